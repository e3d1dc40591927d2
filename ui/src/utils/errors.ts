/** The one place that turns an error response body into a sentence for the person at the screen. */

interface ValidationItem {
  loc?: unknown;
  msg?: unknown;
}

const LOCATION_WORDS = new Set(["body", "query", "path", "header"]);

function fieldOf(loc: unknown): string {
  if (!Array.isArray(loc)) return "";
  return loc
    .filter((part) => !(typeof part === "string" && LOCATION_WORDS.has(part)))
    .map((part) => String(part))
    .join(".");
}

function validationMessage(item: unknown): string | null {
  if (typeof item === "string") return item;
  if (item === null || typeof item !== "object") return null;
  const { loc, msg } = item as ValidationItem;
  if (typeof msg !== "string" || !msg) return null;
  // Pydantic prefixes messages raised by validators; the person reading it does not need that.
  const text = msg.replace(/^Value error, /, "");
  const field = fieldOf(loc);
  return field ? `${field}: ${text}` : text;
}

function nestedError(value: unknown): string | null {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  if (typeof record.error === "string" && record.error) {
    return typeof record.error_description === "string" && record.error_description
      ? `${record.error}: ${record.error_description}`
      : record.error;
  }
  if (typeof record.message === "string" && record.message) return record.message;
  return null;
}

/**
 * Handles, in order: FastAPI's `detail` array (each `msg`), a `detail` string, a nested
 * `{error: string}` (top level or inside `detail`), a short plain-text body; otherwise the status text.
 */
export function extractErrorMessage(body: unknown, statusText?: string, status?: number): string {
  if (body !== null && typeof body === "object" && !Array.isArray(body)) {
    const detail = (body as Record<string, unknown>).detail;
    if (Array.isArray(detail)) {
      const messages = detail.map(validationMessage).filter((m): m is string => m !== null);
      if (messages.length > 0) return messages.join("; ");
    } else if (typeof detail === "string" && detail) {
      return detail;
    } else {
      const inDetail = nestedError(detail);
      if (inDetail) return inDetail;
    }
    const topLevel = nestedError(body);
    if (topLevel) return topLevel;
  } else if (typeof body === "string") {
    const text = body.trim();
    if (text && text.length <= 300 && !text.startsWith("<")) return text;
  }
  if (statusText) return statusText;
  if (status) return `Request failed (HTTP ${status})`;
  return "Request failed";
}
