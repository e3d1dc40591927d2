import { describe, expect, it } from "vitest";
import type { MyServer } from "../src/api/types";
import { connectionOf, describeConnection, describeExpiry, formatDuration, parseTimestamp } from "../src/utils/expiry";

const NOW = new Date("2026-11-27T12:00:00Z");
const MIN = 60_000;

describe("expiry display", () => {
  it("reads timestamps without a zone as UTC", () => {
    expect(parseTimestamp("2026-11-27T15:00:00")?.toISOString()).toBe("2026-11-27T15:00:00.000Z");
    expect(parseTimestamp("2026-11-27T15:00:00+01:00")?.toISOString()).toBe("2026-11-27T14:00:00.000Z");
    expect(parseTimestamp(null)).toBeNull();
    expect(parseTimestamp("garbage")).toBeNull();
  });

  it("formats durations, rounding down", () => {
    expect(formatDuration(30_000)).toBe("less than a minute");
    expect(formatDuration(45 * MIN)).toBe("45 min");
    expect(formatDuration(3 * 60 * MIN + 59 * MIN)).toBe("3 h");
    expect(formatDuration(2 * 24 * 60 * MIN + 5 * MIN)).toBe("2 d");
  });

  it("says 'expires in 3 h' or 'Expired'", () => {
    expect(describeExpiry("2026-11-27T15:00:00Z", NOW)).toEqual({ expired: false, text: "expires in 3 h" });
    expect(describeExpiry("2026-11-27T11:00:00Z", NOW)).toEqual({ expired: true, text: "Expired 1 h ago" });
    expect(describeExpiry(null, NOW)).toEqual({ expired: false, text: null });
  });

  it("computes each connection state from the raw expires_at", () => {
    const base: MyServer = {
      id: "s1",
      name: "gh",
      alias: "gh",
      description: null,
      auth_type: "oauth2",
      per_user: true,
      credential_type: "oauth2",
      credential_status: "active",
      expires_at: null,
      connected_at: "2026-11-27T10:00:00",
      connect_url: "http://hub/ui/servers/s1/connect",
    };
    const state = (row: Partial<MyServer>) => describeConnection(connectionOf({ ...base, ...row }), NOW);
    expect(state({ expires_at: "2026-11-27T15:00:00" })).toEqual({
      state: "connected",
      label: "Connected",
      detail: "expires in 3 h",
    });
    expect(state({ expires_at: "2026-11-27T12:20:00Z" })).toMatchObject({ state: "expiring", detail: "expires in 20 min" });
    expect(state({ expires_at: "2026-11-27T11:59:00Z" })).toMatchObject({ state: "expired", label: "Expired" });
    expect(state({ expires_at: null })).toMatchObject({ state: "connected", detail: null });
    expect(state({ credential_status: "needs_reconnect", expires_at: "2026-11-28T00:00:00Z" })).toMatchObject({
      state: "needs_reconnect",
      label: "Needs reconnect",
    });
    expect(state({ credential_type: null, credential_status: null })).toMatchObject({
      state: "not_connected",
      label: "Not connected",
    });
    // A server with shared access needs nothing from the user, whatever else the row says.
    expect(state({ auth_type: "none", per_user: false, credential_type: null })).toMatchObject({
      state: "not_needed",
      label: "No connection needed",
    });
  });

  it("reads a /v1/me/servers row", () => {
    const connection = connectionOf({
      id: "s2",
      name: "keys",
      alias: "keys",
      description: null,
      auth_type: "byok",
      per_user: true,
      credential_type: "byok",
      credential_status: "needs_reconnect",
      expires_at: null,
      connected_at: null,
      connect_url: null,
    });
    expect(connection).toEqual({
      serverId: "s2",
      serverName: "keys",
      authType: "byok",
      perUser: true,
      credentialType: "byok",
      expiresAt: null,
      needsReconnect: true,
    });
  });
});
