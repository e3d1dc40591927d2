import { useEffect, useState } from "preact/hooks";
import { type ApiClient, apiErrorMessage } from "../api/client";
import type { ServerHealth, ServerOut, UserOut } from "../api/types";
import { ErrorText, Link, Notice, PageTitle, formatDate } from "../components/common";
import { navigate } from "../router";
import { transportLabel, uiTransportOf } from "../utils/transport";

function target(server: ServerOut): string {
  if (server.spec_location) return server.spec_location;
  if (server.url) return server.url;
  return [server.command ?? "", ...server.args].join(" ").trim();
}

const AUTH_LABELS: Record<string, string> = {
  none: "None",
  static: "Static header",
  byok: "BYOK",
  oauth2: "OAuth2",
};

/** "3 of 13" when an allowlist narrows what the upstream listed; "—" until something listed them. */
function toolCount(server: ServerOut, health: ServerHealth | undefined): string {
  const listed = health?.tool_count;
  if (listed === null || listed === undefined) return "—";
  if (server.allowed_tools === null) return String(listed);
  return `${Math.min(server.allowed_tools.length, listed)} of ${listed}`;
}

function whoMayUse(server: ServerOut, usersById: Map<string, UserOut>): string {
  if (server.access === "public") return "Anyone (no key needed)";
  if (server.access === "all_users") return "All users";
  if (server.allowed_users.length === 0) return "Nobody yet";
  return server.allowed_users.map((id) => usersById.get(id)?.name ?? id).join(", ");
}

function HealthCell(props: { health: ServerHealth | undefined; testing: boolean }) {
  const { health, testing } = props;
  if (testing) return <span class="health-unknown">Testing…</span>;
  if (!health || health.state === "unknown") {
    return <span class="health-unknown">Not checked yet</span>;
  }
  const when = health.checked_at ? formatDate(health.checked_at) : null;
  return (
    <>
      <span class={`health-${health.state}`}>{health.state === "ok" ? "Last connect ok" : "Last connect failed"}</span>
      {health.error ? <div class="muted">{health.error}</div> : null}
      {when ? <div class="muted">{when}</div> : null}
    </>
  );
}

export function ServersPage(props: { client: ApiClient }) {
  const { client } = props;
  const [servers, setServers] = useState<ServerOut[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [users, setUsers] = useState<Map<string, UserOut>>(new Map());
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [health, setHealth] = useState<Map<string, ServerHealth>>(new Map());
  const [testing, setTesting] = useState<Set<string>>(new Set());

  const mergeHealth = (entries: ServerHealth[]) =>
    setHealth((current) => new Map([...current, ...entries.map((entry) => [entry.server_id, entry] as const)]));

  const load = async (after: string | null) => {
    setLoading(true);
    setError(null);
    try {
      const page = await client.listServers(after);
      setServers((current) => (after ? [...current, ...page.items] : page.items));
      setCursor(page.next_cursor);
      // Health is this hub's last view of each upstream; a failure to read it leaves the list usable.
      client.serverHealth(page.items.map((server) => server.id)).then(mergeHealth, () => {});
      const userPage = await client.listUsers(null, 200);
      setUsers(new Map(userPage.items.map((user) => [user.id, user])));
    } catch (caught) {
      setError(apiErrorMessage(caught, "Could not load the servers."));
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    void load(null);
  }, [client]);

  const runTest = async (server: ServerOut) => {
    setError(null);
    setTesting((current) => new Set([...current, server.id]));
    try {
      const result = await client.testServer(server.id);
      setNotice(`${server.name}: connected, ${result.tools.length} tools.`);
    } catch (caught) {
      setNotice(null);
      setError(`${server.name}: ${apiErrorMessage(caught, "the test did not complete.")}`);
    } finally {
      setTesting((current) => new Set([...current].filter((id) => id !== server.id)));
      client.serverHealth([server.id]).then(mergeHealth, () => {});
    }
  };

  const remove = async (server: ServerOut) => {
    setError(null);
    try {
      await client.deleteServer(server.id);
      setServers((current) => current.filter((s) => s.id !== server.id));
      setNotice(`Deleted server ${server.name}.`);
    } catch (caught) {
      setError(apiErrorMessage(caught, "Could not delete the server."));
    } finally {
      setConfirming(null);
    }
  };

  return (
    <main id="main">
      <div class="title-row">
        <PageTitle>Servers</PageTitle>
        <button type="button" class="primary" onClick={() => navigate("/servers/new")}>
          Add server
        </button>
      </div>
      <ErrorText message={error} />
      <Notice message={notice} />
      {!loading && servers.length === 0 && !error ? (
        <p class="empty">No servers yet. Add one to give your users its tools.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Connected MCP servers</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Transport</th>
                <th scope="col">Endpoint</th>
                <th scope="col">Auth</th>
                <th scope="col">Status</th>
                <th scope="col">Health</th>
                <th scope="col">Tools</th>
                <th scope="col">Who may use it</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {servers.map((server) => (
                <tr key={server.id} data-server={server.name}>
                  <th scope="row">
                    <Link to={`/servers/${server.id}`}>{server.name}</Link>
                    {server.description ? <div class="muted">{server.description}</div> : null}
                  </th>
                  <td>
                    <span class="badge">{transportLabel(uiTransportOf(server))}</span>
                  </td>
                  <td class="mono wrap">{target(server)}</td>
                  <td>{AUTH_LABELS[server.auth_type] ?? server.auth_type}</td>
                  <td>
                    <span class={server.enabled ? "status ok" : "status off"}>
                      {server.enabled ? "Enabled" : "Disabled"}
                    </span>
                  </td>
                  <td class="health">
                    <HealthCell health={health.get(server.id)} testing={testing.has(server.id)} />
                  </td>
                  <td class="tool-count">{toolCount(server, health.get(server.id))}</td>
                  <td>{whoMayUse(server, users)}</td>
                  <td class="actions">
                    {confirming === server.id ? (
                      <>
                        <button type="button" class="danger" onClick={() => remove(server)}>
                          Confirm delete {server.name}
                        </button>
                        <button type="button" onClick={() => setConfirming(null)}>
                          Cancel
                        </button>
                      </>
                    ) : (
                      <>
                        <button type="button" onClick={() => runTest(server)} disabled={testing.has(server.id)}>
                          Test<span class="visually-hidden"> {server.name}</span>
                        </button>
                        <Link to={`/servers/${server.id}`} class="button">
                          Edit<span class="visually-hidden"> {server.name}</span>
                        </Link>
                        <button type="button" onClick={() => setConfirming(server.id)}>
                          Delete<span class="visually-hidden"> {server.name}</span>
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {loading ? <p aria-live="polite">Loading…</p> : null}
      {cursor && !loading ? (
        <button type="button" onClick={() => load(cursor)}>
          Load more
        </button>
      ) : null}
    </main>
  );
}
