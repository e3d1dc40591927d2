import { useEffect, useState } from "preact/hooks";
import { type ApiClient, apiErrorMessage } from "../api/client";
import type { ServerOut, ToolInfo, UserOut } from "../api/types";
import { ErrorText, Link, Notice, Options, PageTitle, inputChecked, inputValue } from "../components/common";
import { navigate } from "../router";
import {
  ACCESS_OPTIONS,
  AUTH_OPTIONS,
  BYOK_MODE_OPTIONS,
  BYOK_PLACEHOLDER,
  FormError,
  type ServerForm,
  TRANSPORT_OPTIONS,
  type UiTransport,
  buildServerPayload,
  emptyServerForm,
  formFromServer,
} from "../utils/transport";
import { allowedCount, isToolAllowed, toggleTool } from "../utils/tools";

type TestState =
  | { status: "idle" }
  | { status: "running" }
  | { status: "done"; tools: ToolInfo[] }
  | { status: "failed"; message: string };

function failure(caught: unknown, fallback: string): string {
  if (caught instanceof FormError) return caught.message;
  return apiErrorMessage(caught, fallback);
}

export function ServerFormPage(props: { client: ApiClient; serverId: string | null }) {
  const { client, serverId } = props;
  const editing = serverId !== null;
  const [form, setForm] = useState<ServerForm>(emptyServerForm());
  const [stored, setStored] = useState<ServerOut | null>(null);
  const [users, setUsers] = useState<UserOut[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [test, setTest] = useState<TestState>({ status: "idle" });
  const [discovery, setDiscovery] = useState<{ busy: boolean; error: string | null; notice: string | null }>({
    busy: false,
    error: null,
    notice: null,
  });

  useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        const [server, userPage] = await Promise.all([
          serverId ? client.getServer(serverId) : Promise.resolve(null),
          client.listUsers(null, 200),
        ]);
        if (cancelled) return;
        setUsers(userPage.items);
        if (server) {
          setStored(server);
          setForm(formFromServer(server));
        }
      } catch (caught) {
        if (!cancelled) setError(apiErrorMessage(caught, "Could not load the server."));
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [client, serverId]);

  const set = <K extends keyof ServerForm>(field: K, value: ServerForm[K]) =>
    setForm((current) => ({ ...current, [field]: value }));
  const text = (field: keyof ServerForm) => (event: Event) => set(field, inputValue(event) as never);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    let payload;
    try {
      payload = buildServerPayload(form, editing ? "update" : "create");
    } catch (caught) {
      setError(caught instanceof FormError ? caught.message : "Check the form.");
      return;
    }
    setBusy(true);
    try {
      if (serverId) await client.updateServer(serverId, payload);
      else await client.createServer(payload);
      navigate("/servers");
    } catch (caught) {
      setError(apiErrorMessage(caught, "Could not save the server."));
    } finally {
      setBusy(false);
    }
  };

  const refreshSpec = async () => {
    if (!serverId) return;
    setError(null);
    setBusy(true);
    try {
      setStored(await client.refreshServerSpec(serverId));
    } catch (caught) {
      setError(apiErrorMessage(caught, "Could not read the spec."));
    } finally {
      setBusy(false);
    }
  };

  /**
   * A saved server is tested as saved (its write-only secrets never come back to the form); a new one is
   * tested as the form describes it, mapped exactly as a save would map it (OpenAPI → http + spec).
   */
  const testConnection = async () => {
    setTest({ status: "running" });
    try {
      const result = serverId
        ? await client.testServer(serverId)
        : await client.testServerForm(buildServerPayload(form, "create"));
      setTest({ status: "done", tools: result.tools });
    } catch (caught) {
      setTest({ status: "failed", message: failure(caught, "The connection test did not complete.") });
    }
  };

  const discover = async () => {
    const url = form.url.trim();
    if (!url || (form.transport !== "streamable_http" && form.transport !== "sse")) {
      setDiscovery({ busy: false, notice: null, error: "Discover needs the server's MCP endpoint URL: enter it first." });
      return;
    }
    setDiscovery({ busy: true, error: null, notice: null });
    try {
      const found = await client.discoverOAuth(url);
      setForm((current) => ({
        ...current,
        authorizationUrl: found.authorization_url,
        tokenUrl: found.token_url,
        registrationUrl: found.registration_url ?? "",
        issuer: found.issuer ?? "",
        scopes: found.scopes.length > 0 ? found.scopes.join(" ") : current.scopes,
      }));
      setDiscovery({
        busy: false,
        error: null,
        notice: `Found the authorization server${found.issuer ? ` ${found.issuer}` : ""}; the fields below are filled in.`,
      });
    } catch (caught) {
      setDiscovery({ busy: false, notice: null, error: failure(caught, "Discovery did not complete.") });
    }
  };

  const toolNames = test.status === "done" ? test.tools.map((tool) => tool.name) : [];
  const secretHint = (isSet: boolean) => (editing && isSet ? "Stored; leave blank to keep it." : undefined);
  const headerStored = Boolean(stored && stored.header_names.length > 0);

  return (
    <main id="main">
      <p>
        <Link to="/servers">← Servers</Link>
      </p>
      <PageTitle>{editing ? `Edit server ${stored?.name ?? ""}` : "Add a server"}</PageTitle>
      <form class="card form" onSubmit={submit} aria-describedby={error ? "server-error" : undefined} noValidate>
        <fieldset>
          <legend>Server</legend>
          <label for="server-name">Name</label>
          <input
            id="server-name"
            value={form.name}
            onInput={text("name")}
            required
            pattern="[A-Za-z0-9][A-Za-z0-9_\-]{0,63}"
            aria-describedby="server-name-hint"
          />
          <small id="server-name-hint">Letters, digits, - and _; tool names on /mcp are prefixed with it.</small>

          <label for="server-description">Description (optional)</label>
          <input id="server-description" value={form.description} onInput={text("description")} />

          <label for="server-transport">Transport</label>
          <select
            id="server-transport"
            value={form.transport}
            onChange={(e) => set("transport", inputValue(e) as UiTransport)}
          >
            <Options options={TRANSPORT_OPTIONS} />
          </select>

          {form.transport === "streamable_http" || form.transport === "sse" ? (
            <>
              <label for="server-url">{form.transport === "sse" ? "SSE endpoint URL" : "MCP endpoint URL"}</label>
              <input
                id="server-url"
                type="url"
                value={form.url}
                onInput={text("url")}
                placeholder={form.transport === "sse" ? "https://example.com/sse" : "https://example.com/mcp"}
                required
              />
            </>
          ) : null}
          {form.transport === "openapi" ? (
            <>
              <label for="server-spec">OpenAPI document (URL or file path)</label>
              <input
                id="server-spec"
                value={form.specLocation}
                onInput={text("specLocation")}
                placeholder="https://api.example.com/openapi.json"
                required
                aria-describedby="server-spec-hint"
              />
              <small id="server-spec-hint">
                The hub reads and checks it now, and turns the API's operations into MCP tools.
                {stored?.spec_fetched_at ? ` Last read ${new Date(stored.spec_fetched_at).toLocaleString()}.` : ""}
              </small>
              <label for="server-openapi-base-url">Base URL (optional)</label>
              <input
                id="server-openapi-base-url"
                value={form.openapiBaseUrl}
                onInput={text("openapiBaseUrl")}
                placeholder="default: the spec's server URL"
              />
              <label for="server-openapi-include">Only these tags or operationIds (one per line)</label>
              <textarea id="server-openapi-include" rows={2} value={form.openapiInclude} onInput={text("openapiInclude")} />
              <label for="server-openapi-exclude">Leave out these tags or operationIds (one per line)</label>
              <textarea id="server-openapi-exclude" rows={2} value={form.openapiExclude} onInput={text("openapiExclude")} />
              {editing && stored?.spec_location ? (
                <button type="button" class="secondary" disabled={busy} onClick={refreshSpec}>
                  Read the spec again
                </button>
              ) : null}
            </>
          ) : null}
          {form.transport === "stdio" ? (
            <>
              <label for="server-command">Command</label>
              <input id="server-command" value={form.command} onInput={text("command")} placeholder="npx" required />
              <label for="server-args">Arguments (one per line)</label>
              <textarea id="server-args" rows={3} value={form.args} onInput={text("args")} />
              <label for="server-env">Environment (NAME=value per line; write-only)</label>
              <textarea
                id="server-env"
                rows={3}
                value={form.env}
                onInput={text("env")}
                aria-describedby="server-env-hint"
                autocomplete="off"
              />
              <small id="server-env-hint">
                {editing && stored && stored.env_names.length > 0
                  ? `Stored: ${stored.env_names.join(", ")}. Leave blank to keep them.`
                  : "Values are encrypted and never shown again."}
              </small>
            </>
          ) : null}
        </fieldset>

        <fieldset>
          <legend>Authentication to the upstream</legend>
          <label for="server-auth">Auth type</label>
          <select
            id="server-auth"
            value={form.authType}
            onChange={(e) => set("authType", inputValue(e) as ServerForm["authType"])}
          >
            <Options options={AUTH_OPTIONS} />
          </select>

          {form.authType === "static" ? (
            <>
              <label for="server-header-name">Header name</label>
              <input id="server-header-name" value={form.headerName} onInput={text("headerName")} />
              <label for="server-header-value">Header value (write-only)</label>
              <input
                id="server-header-value"
                type="password"
                autocomplete="off"
                value={form.headerValue}
                onInput={text("headerValue")}
                aria-describedby="server-header-value-hint"
              />
              <small id="server-header-value-hint">
                {secretHint(headerStored) ?? "Sent on every call, for every user."}
              </small>
            </>
          ) : null}
          {form.authType === "byok" ? (
            <>
              <label for="server-byok-mode">Where the user's key goes</label>
              <select
                id="server-byok-mode"
                value={form.byokMode}
                onChange={(e) => set("byokMode", inputValue(e) as ServerForm["byokMode"])}
              >
                <Options
                  options={BYOK_MODE_OPTIONS.filter((option) => option.value !== "spec" || form.transport === "openapi")}
                />
              </select>
              {form.byokMode === "spec" ? (
                <small>apiKey (header, query or cookie), http bearer or basic, as each operation requires.</small>
              ) : (
                <>
                  <label for="server-byok-name">
                    {BYOK_MODE_OPTIONS.find((o) => o.value === form.byokMode)?.nameLabel ?? "Name"}
                  </label>
                  <input id="server-byok-name" value={form.byokName} onInput={text("byokName")} />
                </>
              )}
              {form.byokMode === "header" ? (
                <>
                  <label for="server-header-template">Header template</label>
                  <input
                    id="server-header-template"
                    value={form.headerTemplate}
                    onInput={text("headerTemplate")}
                    placeholder={`Bearer ${BYOK_PLACEHOLDER}`}
                    aria-describedby="server-header-template-hint"
                  />
                  <small id="server-header-template-hint">
                    {BYOK_PLACEHOLDER} is replaced by each user's own key, e.g. "Bearer {BYOK_PLACEHOLDER}" or just "
                    {BYOK_PLACEHOLDER}".
                  </small>
                </>
              ) : null}
            </>
          ) : null}
          {form.authType === "oauth2" ? (
            <>
              <p class="muted">
                All optional: without an authorization URL the hub discovers it from the server; without a client
                id it registers itself.
              </p>
              <div class="buttons">
                <button type="button" onClick={discover} disabled={discovery.busy} aria-describedby="discover-hint">
                  {discovery.busy ? "Discovering…" : "Discover"}
                </button>
                <small id="discover-hint">Fills the fields from the server's OAuth metadata (RFC 9728, RFC 8414).</small>
              </div>
              <ErrorText id="discover-error" message={discovery.error} />
              <Notice message={discovery.notice} />
              <label for="server-authorization-url">Authorization URL</label>
              <input
                id="server-authorization-url"
                type="url"
                value={form.authorizationUrl}
                onInput={text("authorizationUrl")}
              />
              <label for="server-issuer">Issuer (checked against the callback's iss)</label>
              <input id="server-issuer" type="url" value={form.issuer} onInput={text("issuer")} autocomplete="off" />
              <label for="server-token-url">Token URL</label>
              <input id="server-token-url" type="url" value={form.tokenUrl} onInput={text("tokenUrl")} />
              <label for="server-registration-url">Registration URL (dynamic client registration)</label>
              <input
                id="server-registration-url"
                type="url"
                value={form.registrationUrl}
                onInput={text("registrationUrl")}
              />
              <label for="server-client-id">Client id</label>
              <input id="server-client-id" value={form.clientId} onInput={text("clientId")} autocomplete="off" />
              <label for="server-client-secret">Client secret (write-only)</label>
              <input
                id="server-client-secret"
                type="password"
                autocomplete="off"
                value={form.clientSecret}
                onInput={text("clientSecret")}
                aria-describedby="server-client-secret-hint"
              />
              <small id="server-client-secret-hint">
                {secretHint(Boolean(stored?.client_secret_set)) ?? "Encrypted and never shown again."}
              </small>
              <label for="server-scopes">Scopes (space-separated)</label>
              <input id="server-scopes" value={form.scopes} onInput={text("scopes")} />
            </>
          ) : null}
        </fieldset>

        <fieldset class="test" aria-describedby="test-hint">
          <legend>Connection test</legend>
          <small id="test-hint">
            {editing
              ? "Connects with the saved settings (save your changes first) and lists the tools."
              : "Connects with the settings above, before anything is saved, and lists the tools."}{" "}
            OAuth2 and BYOK servers are tested with your own connected account.
          </small>
          <div class="buttons">
            <button type="button" onClick={testConnection} disabled={test.status === "running"}>
              {test.status === "running" ? "Testing…" : "Test connection"}
            </button>
            <span role="status" aria-live="polite" class="test-status">
              {test.status === "running" ? "Connecting to the server…" : null}
              {test.status === "done"
                ? `Connected: ${test.tools.length} tool${test.tools.length === 1 ? "" : "s"}.`
                : null}
            </span>
          </div>
          {test.status === "failed" ? <ErrorText id="test-error" message={test.message} /> : null}
        </fieldset>

        <fieldset>
          <legend>Who may use it</legend>
          <label for="server-access">Access</label>
          <select
            id="server-access"
            value={form.access}
            onChange={(e) => set("access", inputValue(e) as ServerForm["access"])}
          >
            <Options options={ACCESS_OPTIONS} />
          </select>
          {form.access === "listed_users" ? (
            <fieldset class="checks">
              <legend>Users</legend>
              {users.length === 0 ? <p class="muted">No users yet.</p> : null}
              {users.map((user) => (
                <label key={user.id} class="check">
                  <input
                    type="checkbox"
                    checked={form.allowedUsers.includes(user.id)}
                    onChange={(e) =>
                      set(
                        "allowedUsers",
                        inputChecked(e)
                          ? [...form.allowedUsers, user.id]
                          : form.allowedUsers.filter((id) => id !== user.id),
                      )
                    }
                  />
                  {user.name}
                </label>
              ))}
            </fieldset>
          ) : null}
          {test.status === "done" && test.tools.length > 0 ? (
            <fieldset class="checks tools" aria-describedby="server-tools-hint">
              <legend>Tools users may call</legend>
              <small id="server-tools-hint">
                Untick a tool to deny it. With every tool ticked, tools the server adds later are allowed too; to
                allow none, disable the server.
              </small>
              {test.tools.map((tool) => {
                const allowed = isToolAllowed(form.allowedTools, tool.name);
                return (
                  <label key={tool.name} class="check tool">
                    <input
                      type="checkbox"
                      checked={allowed}
                      disabled={allowed && allowedCount(form.allowedTools, toolNames) === 1}
                      onChange={(e) => set("allowedTools", toggleTool(form.allowedTools, toolNames, tool.name, inputChecked(e)))}
                    />
                    <span class="mono">{tool.name}</span>
                    {tool.description ? <span class="muted">{tool.description}</span> : null}
                  </label>
                );
              })}
            </fieldset>
          ) : (
            <>
              <label for="server-allowed-tools">Allowed tools (one per line; empty allows all)</label>
              <textarea
                id="server-allowed-tools"
                rows={3}
                value={form.allowedTools}
                onInput={text("allowedTools")}
                aria-describedby="server-allowed-tools-hint"
              />
              <small id="server-allowed-tools-hint">
                Upstream tool names, as the server calls them. Test the connection to pick them from a list.
              </small>
            </>
          )}
          <label class="check">
            <input type="checkbox" checked={form.enabled} onChange={(e) => set("enabled", inputChecked(e))} />
            Enabled
          </label>
        </fieldset>

        <ErrorText id="server-error" message={error} />
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Saving…" : editing ? "Save changes" : "Add server"}
          </button>
          <Link to="/servers" class="button">
            Cancel
          </Link>
        </div>
      </form>
    </main>
  );
}
