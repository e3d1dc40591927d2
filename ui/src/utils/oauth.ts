/** Starting a person's OAuth connection to an upstream server, shared by /connections and /servers/{id}/connect. */
import { type ApiClient, safeRedirectUrl } from "../api/client";
import { BASE } from "../router";

/**
 * Asks the hub for the provider's authorization URL (the callback returns to /ui/connections) and sends
 * the browser there. Answers the sentence to show when the hub's URL is not one to follow, else null;
 * an `ApiError` from the hub propagates to the caller.
 */
export async function startOAuthRedirect(client: ApiClient, serverId: string): Promise<string | null> {
  const answer = await client.startOAuth(serverId, `${BASE}/connections`);
  const target = safeRedirectUrl(answer.authorization_url);
  if (!target) return "The hub answered without a usable authorization URL.";
  window.location.assign(target);
  return null;
}
