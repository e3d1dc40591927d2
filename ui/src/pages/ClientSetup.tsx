import { useEffect, useState } from "preact/hooks";
import { type ApiClient, ApiError, allPages } from "../api/client";
import { CopyButton, ErrorText, Options, PageTitle, inputValue } from "../components/common";
import {
  AUTHS,
  CLIENTS,
  type ClientAuth,
  type ClientKind,
  KEY_PLACEHOLDER,
  clientConfig,
  endpointUrl,
  whereToPaste,
} from "../utils/clientConfig";

/** The servers the signed-in key may use: what a client configured with that key can reach. */
async function serverNames(client: ApiClient): Promise<string[]> {
  return (await allPages((cursor) => client.listMyServers(cursor))).map((server) => server.name);
}

export function ClientSetupPage(props: { client: ApiClient }) {
  const [names, setNames] = useState<string[]>([]);
  const [server, setServer] = useState("");
  const [kind, setKind] = useState<ClientKind>("claude_code");
  const [auth, setAuth] = useState<ClientAuth>("oauth");
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    serverNames(props.client)
      .then(setNames)
      .catch((caught) =>
        setError(
          caught instanceof ApiError
            ? `The server list is unavailable (${caught.message}); the /mcp setup below still works.`
            : "The server list is unavailable.",
        ),
      );
  }, [props.client]);

  const origin = window.location.origin;
  const chosen = server || null;
  const config = clientConfig(kind, origin, chosen, auth);
  const where = whereToPaste(kind, auth);

  return (
    <main id="main">
      <PageTitle>Client setup</PageTitle>
      <p>
        Point an MCP client at <code>{endpointUrl(origin, null)}</code> for every server you may use (tool names
        prefixed with the server's alias), or at one server's own endpoint (names unchanged). With OAuth the client
        opens the hub's sign-in page; with a hub API key, replace <code>{KEY_PLACEHOLDER}</code> with your key.
      </p>
      <ErrorText message={error} />
      <div class="card inline-form">
        <div>
          <label for="setup-client">Client</label>
          <select id="setup-client" value={kind} onChange={(e) => setKind(inputValue(e) as ClientKind)}>
            <Options options={CLIENTS} />
          </select>
        </div>
        <div>
          <label for="setup-auth">Sign-in</label>
          <select id="setup-auth" value={auth} onChange={(e) => setAuth(inputValue(e) as ClientAuth)}>
            <Options options={AUTHS} />
          </select>
        </div>
        <div>
          <label for="setup-server">Endpoint</label>
          <select id="setup-server" value={server} onChange={(e) => setServer(inputValue(e))}>
            <option value="">All my servers (/mcp)</option>
            {names.map((name) => (
              <option key={name} value={name}>
                {name} (/mcp/{name})
              </option>
            ))}
          </select>
        </div>
      </div>
      <section class="card" aria-labelledby="config-heading">
        <h2 id="config-heading">{CLIENTS.find((c) => c.value === kind)?.label} configuration</h2>
        <p class="muted">{where}</p>
        <label for="setup-config" class="visually-hidden">
          Configuration to paste
        </label>
        <textarea id="setup-config" class="mono config" readOnly rows={config.split("\n").length + 1} value={config} />
        <CopyButton text={config} label="Copy configuration" />
      </section>
    </main>
  );
}
