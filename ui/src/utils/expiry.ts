/**
 * Connection state and expiry, computed in the browser from the raw `expires_at` the API returns
 * (an expired credential still carries its timestamp; the label is never stored server-side).
 */
import type { CredentialRow } from "../api/types";

export type ConnectionState = "connected" | "not_connected" | "expiring" | "expired" | "needs_reconnect";

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
  credentialType: "oauth2" | "byok" | null;
  expiresAt: string | null;
  needsReconnect: boolean;
}

/** Reads one GET /v1/credentials row, whichever of the tolerated shapes it has. */
export function normalizeConnection(row: CredentialRow): Connection | null {
  const serverId = row.server_id ?? row.server?.id;
  if (!serverId) return null;
  const credentialType = row.type === "oauth2" || row.type === "byok" ? row.type : null;
  const status = (row.status ?? "").toLowerCase();
  return {
    serverId,
    serverName: row.server_name ?? row.server?.name ?? serverId,
    authType: row.auth_type ?? row.server?.auth_type ?? credentialType ?? "none",
    credentialType: status === "not_connected" ? null : credentialType,
    expiresAt: row.expires_at ?? null,
    needsReconnect: row.needs_reconnect === true || status === "needs_reconnect",
  };
}

/**
 * One row per server: the user's credentials, plus (when the caller can see the server list, i.e. an
 * admin) a "not connected" row for every per-user server without one. GET /v1/credentials alone lists
 * only credentials that exist.
 */
export function mergeConnections(
  rows: CredentialRow[],
  servers: ReadonlyArray<{ id: string; name: string; auth_type: string; enabled?: boolean }> | null,
): Connection[] {
  const byServer = new Map<string, Connection>();
  for (const row of rows) {
    const connection = normalizeConnection(row);
    if (connection) byServer.set(connection.serverId, connection);
  }
  for (const server of servers ?? []) {
    const perUser = server.auth_type === "oauth2" || server.auth_type === "byok";
    const known = byServer.get(server.id);
    if (known) {
      byServer.set(server.id, { ...known, serverName: server.name, authType: server.auth_type });
    } else if (perUser && server.enabled !== false) {
      byServer.set(server.id, {
        serverId: server.id,
        serverName: server.name,
        authType: server.auth_type,
        credentialType: null,
        expiresAt: null,
        needsReconnect: false,
      });
    }
  }
  return [...byServer.values()].sort((a, b) => a.serverName.localeCompare(b.serverName));
}

export interface ConnectionDisplay {
  state: ConnectionState;
  label: string;
  detail: string | null;
}

export function describeConnection(connection: Connection, now: Date): ConnectionDisplay {
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
