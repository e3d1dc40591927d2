/**
 * Allow/deny toggles over a server's tools. The form keeps `allowed_tools` as text, one name per line,
 * blank meaning every tool is allowed (the API's null); the toggles read and write that same text, so
 * the payload has one source whichever control the admin used.
 */
import { lines } from "./transport";

export function isToolAllowed(allowedText: string, name: string): boolean {
  const allowed = lines(allowedText);
  return allowed.length === 0 || allowed.includes(name);
}

/**
 * The allowlist after turning one tool on or off. Names the upstream no longer lists are dropped (they
 * allow nothing); when every listed tool is on, the result is blank, i.e. "all tools", so tools the
 * upstream adds later are allowed too. The last allowed tool cannot be turned off: blank already means
 * "all", and a server with no tool at all is disabled instead (the form says so).
 */
export function toggleTool(allowedText: string, toolNames: readonly string[], name: string, on: boolean): string {
  const next = toolNames.filter((tool) => (tool === name ? on : isToolAllowed(allowedText, tool)));
  if (next.length === 0) return allowedText;
  return next.length === toolNames.length ? "" : next.join("\n");
}

/** How many of `toolNames` the allowlist lets through (the last one's toggle is locked on). */
export function allowedCount(allowedText: string, toolNames: readonly string[]): number {
  return toolNames.filter((tool) => isToolAllowed(allowedText, tool)).length;
}
