/**
 * Connection state and expiry, computed in the browser from the raw `expires_at` the API returns
 * (an expired credential still carries its timestamp; the label is never stored server-side).
 */
import type { MyServer } from "../api/types";

export type ConnectionState = "connected" | "not_connected" | "expiring" | "expired" | "needs_reconnect" | "not_needed";

/** An OAuth token that ends within this window shows as "expiring". */
export const EXPIRING_WINDOW_MS = 60 * 60 * 1000;

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Timestamps without a zone are UTC (the hub stores UTC); `Date.parse` would read them as local time. */
export function parseTimestamp(value: string | null | undefined): Date | null {
  if (!value) return null;
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(value.trim());
  const millis = Date.parse(hasZone ? value : `${value}Z`);
  return Number.isNaN(millis) ? null : new Date(millis);
}

/** "in 45 min", "in 3 h", "in 2 d" (and "45 min ago"...). Rounds down, so it never promises too much. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < MINUTE) return "less than a minute";
  if (abs < HOUR) return `${Math.floor(abs / MINUTE)} min`;
  if (abs < DAY) return `${Math.floor(abs / HOUR)} h`;
  return `${Math.floor(abs / DAY)} d`;
}

export interface ExpiryDisplay {
  expired: boolean;
  /** "Expired" or "expires in 3 h"; null when the credential has no expiry. */
  text: string | null;
}

export function describeExpiry(expiresAt: string | null | undefined, now: Date): ExpiryDisplay {
  const at = parseTimestamp(expiresAt);
  if (!at) return { expired: false, text: null };
  const left = at.getTime() - now.getTime();
  if (left <= 0) return { expired: true, text: `Expired ${formatDuration(left)} ago` };
  return { expired: false, text: `expires in ${formatDuration(left)}` };
}

export interface Connection {
  serverId: string;
  serverName: string;
  authType: string;
  /** Used with each user's own credential (OAuth2 or BYOK); other servers need nothing from the user. */
  perUser: boolean;
  credentialType: "oauth2" | "byok" | null;
  expiresAt: string | null;
  needsReconnect: boolean;
}

/** One GET /v1/me/servers row as the pages use it. */
export function connectionOf(server: MyServer): Connection {
  return {
    serverId: server.id,
    serverName: server.name,
    authType: server.auth_type,
    perUser: server.per_user,
    credentialType: server.credential_type,
    expiresAt: server.expires_at,
    needsReconnect: server.credential_status === "needs_reconnect",
  };
}

export interface ConnectionDisplay {
  state: ConnectionState;
  label: string;
  detail: string | null;
}

export function describeConnection(connection: Connection, now: Date): ConnectionDisplay {
  if (!connection.perUser) {
    return { state: "not_needed", label: "No connection needed", detail: "the hub uses the server's shared access" };
  }
  if (connection.credentialType === null) {
    return { state: "not_connected", label: "Not connected", detail: null };
  }
  if (connection.needsReconnect) {
    return { state: "needs_reconnect", label: "Needs reconnect", detail: "the provider refused the stored grant" };
  }
  const expiry = describeExpiry(connection.expiresAt, now);
  if (expiry.expired) return { state: "expired", label: "Expired", detail: expiry.text };
  const at = parseTimestamp(connection.expiresAt);
  if (at && at.getTime() - now.getTime() <= EXPIRING_WINDOW_MS) {
    return { state: "expiring", label: "Expiring", detail: expiry.text };
  }
  return { state: "connected", label: "Connected", detail: expiry.text };
}
