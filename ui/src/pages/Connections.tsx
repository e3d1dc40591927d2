import { useEffect, useState } from "preact/hooks";
import { type ApiClient, allPages, apiErrorMessage } from "../api/client";
import { ErrorText, Notice, PageTitle, inputValue } from "../components/common";
import { type Connection, connectionOf, describeConnection } from "../utils/expiry";
import { startOAuthRedirect } from "../utils/oauth";

const AUTH_BADGES: Record<string, string> = {
  none: "Shared",
  static: "Shared",
  oauth2: "OAuth2",
  byok: "BYOK",
};

/** What the OAuth callback may append when it sends the browser back here. */
function returnedFromProvider(): { error: string | null; notice: string | null } {
  const params = new URLSearchParams(window.location.search);
  const error = params.get("error_description") ?? params.get("error");
  const connected = params.get("connected");
  if (error || connected) {
    // Said once: a reload or a bookmark of this page must not repeat it.
    window.history.replaceState(null, "", window.location.pathname);
  }
  return {
    error: error ? `The sign-in did not complete: ${error}` : null,
    notice: connected ? `Connected ${connected}.` : null,
  };
}

export function ByokForm(props: {
  connection: Pick<Connection, "serverId" | "serverName" | "credentialType">;
  onSave: (key: string) => Promise<boolean>;
}) {
  const [key, setKey] = useState("");
  const id = `byok-${props.connection.serverId}`;
  const submit = async (event: Event) => {
    event.preventDefault();
    if (await props.onSave(key)) setKey("");
  };
  return (
    <form class="inline-form byok" onSubmit={submit}>
      <label for={id}>
        {props.connection.credentialType ? "Replace your API key" : "Your API key"} for {props.connection.serverName}
      </label>
      <input
        id={id}
        type="password"
        autocomplete="off"
        spellcheck={false}
        value={key}
        onInput={(e) => setKey(inputValue(e))}
        required
      />
      <button type="submit" class="primary">
        Save key
      </button>
    </form>
  );
}

export function ConnectionsPage(props: { client: ApiClient }) {
  const { client } = props;
  const [connections, setConnections] = useState<Connection[] | null>(null);
  const [returned] = useState(returnedFromProvider);
  const [error, setError] = useState<string | null>(returned.error);
  const [notice, setNotice] = useState<string | null>(returned.notice);
  const [now, setNow] = useState(() => new Date());

  const load = async () => {
    try {
      const servers = await allPages((cursor) => client.listMyServers(cursor));
      // Servers that need the user's own credential first: they are the ones to act on.
      const connections = servers.map(connectionOf);
      setConnections([...connections.filter((c) => c.perUser), ...connections.filter((c) => !c.perUser)]);
      setNow(new Date());
    } catch (caught) {
      setConnections([]);
      setError(apiErrorMessage(caught, "Could not load your connections."));
    }
  };

  useEffect(() => {
    void load();
    // The expiry labels are computed from the raw timestamps; refresh them while the page is open.
    const timer = window.setInterval(() => setNow(new Date()), 30_000);
    return () => window.clearInterval(timer);
  }, [client]);

  const act = async (run: () => Promise<unknown>, done: string, failed: string): Promise<boolean> => {
    setError(null);
    try {
      await run();
      await load();
      setNotice(done);
      return true;
    } catch (caught) {
      setError(apiErrorMessage(caught, failed));
      return false;
    }
  };

  const connect = async (connection: Connection) => {
    setError(null);
    try {
      const problem = await startOAuthRedirect(client, connection.serverId);
      if (problem) setError(problem);
    } catch (caught) {
      setError(apiErrorMessage(caught, `Could not start connecting ${connection.serverName}.`));
    }
  };

  return (
    <main id="main">
      <PageTitle>My connections</PageTitle>
      <p>
        Every server you may use. Those marked OAuth2 or BYOK are called with your own account: connect it
        here; the others work as they are.
      </p>
      <ErrorText message={error} />
      <Notice message={notice} />
      {connections === null ? <p aria-live="polite">Loading…</p> : null}
      {connections !== null && connections.length === 0 && !error ? (
        <p class="empty">No server is shared with you yet: ask an admin.</p>
      ) : null}
      <ul class="connections">
        {(connections ?? []).map((connection) => {
          const display = describeConnection(connection, now);
          const isOAuth = connection.authType === "oauth2";
          const isByok = connection.authType === "byok";
          return (
            <li key={connection.serverId} class="card connection" data-server={connection.serverName}>
              <div class="connection-head">
                <h2>{connection.serverName}</h2>
                <span class="badge">{AUTH_BADGES[connection.authType] ?? connection.authType}</span>
                <span class={`state state-${display.state}`}>{display.label}</span>
                {display.detail ? <span class="muted">{display.detail}</span> : null}
              </div>
              <div class="buttons">
                {isOAuth && display.state === "not_connected" ? (
                  <button type="button" class="primary" onClick={() => connect(connection)}>
                    Connect<span class="visually-hidden"> {connection.serverName}</span>
                  </button>
                ) : null}
                {isOAuth && display.state !== "not_connected" ? (
                  <button type="button" onClick={() => connect(connection)}>
                    Reconnect<span class="visually-hidden"> {connection.serverName}</span>
                  </button>
                ) : null}
                {isOAuth && connection.credentialType === "oauth2" ? (
                  <button
                    type="button"
                    class="danger"
                    onClick={() =>
                      act(
                        () => client.disconnectOAuth(connection.serverId),
                        `Disconnected ${connection.serverName}.`,
                        "Could not disconnect.",
                      )
                    }
                  >
                    Disconnect<span class="visually-hidden"> {connection.serverName}</span>
                  </button>
                ) : null}
                {isByok && connection.credentialType === "byok" ? (
                  <button
                    type="button"
                    class="danger"
                    onClick={() =>
                      act(
                        () => client.deleteByokKey(connection.serverId),
                        `Removed your key for ${connection.serverName}.`,
                        "Could not remove the key.",
                      )
                    }
                  >
                    Remove key<span class="visually-hidden"> for {connection.serverName}</span>
                  </button>
                ) : null}
              </div>
              {isByok ? (
                <ByokForm
                  connection={connection}
                  onSave={(key) =>
                    act(
                      () => client.saveByokKey(connection.serverId, key),
                      `Saved your key for ${connection.serverName}.`,
                      "Could not save the key.",
                    )
                  }
                />
              ) : null}
            </li>
          );
        })}
      </ul>
    </main>
  );
}
