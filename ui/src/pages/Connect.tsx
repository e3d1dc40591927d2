import { useEffect, useState } from "preact/hooks";
import { type ApiClient, ApiError, allPages, apiErrorMessage } from "../api/client";
import { ErrorText, Link, PageTitle } from "../components/common";
import { navigate } from "../router";
import { startOAuthRedirect } from "../utils/oauth";
import { ByokForm } from "./Connections";

type Kind = "oauth2" | "byok" | "none" | "unknown";

/**
 * /ui/servers/{id}/connect: where the hub's "not connected" errors and `{alias}__connect` tools send a
 * person (mcp_hub/credentials/oauth.py `connect_url`). GET /v1/me/servers says how the server is
 * connected; until it has answered (or if it fails) the page offers both ways and the hub's answer to
 * the attempt settles which applies.
 */
export function ConnectPage(props: { client: ApiClient; serverId: string }) {
  const { client, serverId } = props;
  const [name, setName] = useState<string | null>(null);
  const [kind, setKind] = useState<Kind>("unknown");
  const [connected, setConnected] = useState<"oauth2" | "byok" | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        const servers = await allPages((cursor) => client.listMyServers(cursor));
        const mine = servers.find((server) => server.id === serverId);
        if (cancelled) return;
        if (!mine) {
          setError("This server is not available to you: it does not exist, or it is not shared with you.");
          return;
        }
        setName(mine.name);
        setConnected(mine.credential_type);
        setKind(mine.auth_type === "oauth2" || mine.auth_type === "byok" ? mine.auth_type : "none");
      } catch (caught) {
        if (!cancelled) setError(apiErrorMessage(caught, "Could not load the server."));
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [client, serverId]);

  const label = name ?? "this server";

  const startOAuth = async () => {
    setError(null);
    setBusy(true);
    try {
      const problem = await startOAuthRedirect(client, serverId);
      if (problem) setError(problem);
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 422 && /does not use OAuth/i.test(caught.message)) {
        setKind(/auth_type byok/.test(caught.message) ? "byok" : "none");
        setError(null);
      } else {
        setError(apiErrorMessage(caught, "Could not start connecting."));
      }
    } finally {
      setBusy(false);
    }
  };

  const saveKey = async (key: string): Promise<boolean> => {
    setError(null);
    try {
      await client.saveByokKey(serverId, key);
      navigate(`/connections?connected=${encodeURIComponent(label)}`);
      return true;
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 422 && /auth_type oauth2/.test(caught.message)) {
        setKind("oauth2");
      } else {
        setError(apiErrorMessage(caught, "Could not save the key."));
      }
      return false;
    }
  };

  return (
    <main id="main">
      <p>
        <Link to="/connections">← My connections</Link>
      </p>
      <PageTitle>Connect {label}</PageTitle>
      {connected ? (
        <p>
          You have connected {label} ({connected === "oauth2" ? "signed in" : "with your API key"}); connecting again
          replaces it.
        </p>
      ) : null}
      <ErrorText message={error} />
      {kind === "none" ? <p>{label} needs no connection from you: it works as it is.</p> : null}
      {kind === "oauth2" || kind === "unknown" ? (
        <section class="card" aria-labelledby="connect-oauth">
          <h2 id="connect-oauth">Sign in with the provider</h2>
          <p>You sign in at the server's provider; the hub keeps the resulting token for you, encrypted.</p>
          <button type="button" class="primary" onClick={startOAuth} disabled={busy}>
            {connected === "oauth2" ? "Reconnect" : "Connect"} {label}
          </button>
        </section>
      ) : null}
      {kind === "byok" || kind === "unknown" ? (
        <section class="card" aria-labelledby="connect-byok">
          <h2 id="connect-byok">{kind === "unknown" ? "Or use your own API key" : "Use your own API key"}</h2>
          <p>The key is stored encrypted and never shown again.</p>
          <ByokForm connection={{ serverId, serverName: label, credentialType: connected }} onSave={saveKey} />
        </section>
      ) : null}
    </main>
  );
}
