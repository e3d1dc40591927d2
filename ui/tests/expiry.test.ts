import { describe, expect, it } from "vitest";
import {
  describeConnection,
  describeExpiry,
  formatDuration,
  mergeConnections,
  normalizeConnection,
  parseTimestamp,
} from "../src/utils/expiry";

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
    const base = { server_id: "s1", server_name: "gh", type: "oauth2" as const, status: "active" };
    const state = (row: object) => describeConnection(normalizeConnection({ ...base, ...row })!, NOW);
    expect(state({ expires_at: "2026-11-27T15:00:00" })).toEqual({
      state: "connected",
      label: "Connected",
      detail: "expires in 3 h",
    });
    expect(state({ expires_at: "2026-11-27T12:20:00Z" })).toMatchObject({ state: "expiring", detail: "expires in 20 min" });
    expect(state({ expires_at: "2026-11-27T11:59:00Z" })).toMatchObject({ state: "expired", label: "Expired" });
    expect(state({ expires_at: null })).toMatchObject({ state: "connected", detail: null });
    expect(state({ status: "needs_reconnect", expires_at: "2026-11-28T00:00:00Z" })).toMatchObject({
      state: "needs_reconnect",
      label: "Needs reconnect",
    });
    expect(
      describeConnection(
        { serverId: "s", serverName: "s", authType: "oauth2", credentialType: null, expiresAt: null, needsReconnect: false },
        NOW,
      ),
    ).toMatchObject({ state: "not_connected", label: "Not connected" });
  });

  it("adds a not-connected row for each per-user server without a credential", () => {
    const merged = mergeConnections(
      [{ server_id: "s2", server_name: "gh", type: "oauth2", status: "active", expires_at: null }],
      [
        { id: "s1", name: "keys", auth_type: "byok" },
        { id: "s2", name: "gh", auth_type: "oauth2" },
        { id: "s3", name: "plain", auth_type: "none" },
      ],
    );
    expect(merged.map((c) => [c.serverName, c.authType, c.credentialType])).toEqual([
      ["gh", "oauth2", "oauth2"],
      ["keys", "byok", null],
    ]);
  });
});
