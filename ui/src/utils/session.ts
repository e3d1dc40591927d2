/**
 * The signed-in key lives in sessionStorage only: it goes when the tab closes and is never written to
 * localStorage (DESIGN.md, decision 11).
 */

export type Role = "admin" | "user";

export interface Session {
  key: string;
  role: Role;
}

const STORAGE_KEY = "mcp-hub.session";

export function loadSession(storage: Storage = window.sessionStorage): Session | null {
  const raw = storage.getItem(STORAGE_KEY);
  if (!raw) return null;
  try {
    const parsed = JSON.parse(raw) as Partial<Session>;
    if (typeof parsed.key === "string" && (parsed.role === "admin" || parsed.role === "user")) {
      return { key: parsed.key, role: parsed.role };
    }
  } catch {
    // A damaged entry is the same as none: sign in again.
  }
  storage.removeItem(STORAGE_KEY);
  return null;
}

export function saveSession(session: Session, storage: Storage = window.sessionStorage): void {
  storage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(storage: Storage = window.sessionStorage): void {
  storage.removeItem(STORAGE_KEY);
}
