// End-to-end test of the web UI in headless Debian Chromium, driven by playwright-core, against a real hub.
// Run by tests/ui/test_ui.py, which starts the hub and checks the database afterwards. Environment:
//   HUB_URL        http://127.0.0.1:PORT of a running hub serving /ui
//   ADMIN_KEY      the hub's admin key
//   SPEC_PATH      an OpenAPI document the "OpenAPI" server points at
//   EVERYTHING_URL a real streamable-HTTP MCP server (server-everything) the admin tests and adds
//   DENIED_TOOL    the tool of that server the admin turns off
//   ISSUER         a real OAuth authorization server (tests/credentials/oidc_as.mjs) whose /mcp is the
//                  OAuth-protected upstream; login there is the X-Test-User header
//   ARTIFACTS_DIR  where the screenshots go (default ../test-artifacts/ui)
//   README_IMG_DIR optional: where to save the README's screenshots (servers.png, connections.png)
// Prints "E2E PASSED <n> checks" and exits 0, or prints the failure and exits 1 (e2e/harness.mjs).
import {
  ADMIN_KEY,
  HUB_URL,
  apiBodies,
  assertEveryInputLabelled,
  assertKeyboardReachesEverything,
  assertNoSecretInLocalStorage,
  check,
  readmeShot,
  required,
  run,
  secrets,
  shot,
} from "./harness.mjs";

const SPEC_PATH = required("SPEC_PATH");
const ISSUER = required("ISSUER").replace(/\/+$/, "");
const EVERYTHING_URL = required("EVERYTHING_URL");
const DENIED_TOOL = required("DENIED_TOOL");

run(async (page, context) => {
  // --- the page is served with its security headers ---------------------------------------------
  const first = await page.goto(`${HUB_URL}/ui/`);
  const headers = first.headers();
  check(first.status() === 200, "GET /ui/ answers 200");
  check(/frame-ancestors 'none'/.test(headers["content-security-policy"] ?? ""), "CSP has frame-ancestors 'none'");
  check(/script-src 'self'(;|$)/.test(headers["content-security-policy"] ?? ""), "CSP allows only own scripts");
  await page.getByRole("heading", { name: "Sign in to mcp-hub" }).waitFor();
  await assertEveryInputLabelled(page, "sign-in");
  await shot(page, "01-sign-in");

  // --- a wrong key: the error shows next to the form -------------------------------------------
  await page.getByLabel("API key").fill("mcph_wrong_" + "x".repeat(30));
  await page.getByRole("button", { name: "Sign in" }).click();
  const signinError = page.locator("#signin-error");
  await signinError.waitFor();
  check((await signinError.textContent()).length > 0, "a refused key shows an error next to the form");
  await shot(page, "02-sign-in-error");
  await assertNoSecretInLocalStorage(page, "after a refused sign-in");

  // --- sign in with the keyboard only ----------------------------------------------------------
  await page.getByLabel("API key").fill("");
  await page.locator("body").focus();
  let reached = false;
  for (let i = 0; i < 8 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.id === "api-key");
  }
  check(reached, "the key field is reachable with Tab");
  await page.keyboard.type(ADMIN_KEY);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Servers", exact: true }).waitFor();
  check(page.url().endsWith("/ui/servers"), "an admin lands on the servers page");
  const stored = await page.evaluate(() => JSON.stringify(Object.entries(window.sessionStorage)));
  check(stored.includes(ADMIN_KEY), "the key is kept in sessionStorage (so the localStorage check means something)");
  await assertNoSecretInLocalStorage(page, "after sign-in");
  await shot(page, "03-servers-empty");

  // --- keyboard only: the title takes focus on a new page, the next Tab reaches its action -----
  check(await page.evaluate(() => document.activeElement?.tagName === "H1"), "a new page focuses its title");
  let onAdd = false;
  for (let i = 0; i < 10 && !onAdd; i++) {
    await page.keyboard.press("Tab");
    onAdd = await page.evaluate(() => document.activeElement?.textContent === "Add server");
  }
  check(onAdd, "Add server is reachable with Tab");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Add a server" }).waitFor();
  await page.waitForFunction(() => document.activeElement?.tagName === "H1");
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement?.id === "server-name"), "the form's first field follows");
  await page.goBack();
  await page.getByRole("heading", { name: "Servers", exact: true }).waitFor();

  // --- test connection of a form that points nowhere: progress, then a readable error ----------
  await page.getByRole("button", { name: "Add server" }).click();
  await page.getByRole("heading", { name: "Add a server" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill("nowhere");
  await page.getByLabel("MCP endpoint URL").fill("http://127.0.0.1:9/mcp");
  // Held back a moment on its way to the (real) hub, so the progress state can be seen.
  let release;
  let passed;
  const held = new Promise((resolve) => (release = resolve));
  const continued = new Promise((resolve) => (passed = resolve));
  await page.route("**/v1/servers/test", async (route) => {
    await held;
    await route.continue();
    passed();
  });
  await page.getByRole("button", { name: "Test connection" }).click();
  await page.getByRole("button", { name: "Testing…" }).waitFor();
  check(await page.getByRole("button", { name: "Testing…" }).isDisabled(), "the test button shows progress");
  check((await page.getByText("Connecting to the server…").count()) === 1, "progress is announced");
  release();
  await continued;
  await page.unroute("**/v1/servers/test");
  const testError = page.locator("#test-error");
  await testError.waitFor({ timeout: 30_000 });
  const testErrorText = await testError.textContent();
  check(/cannot connect to upstream 'nowhere'/.test(testErrorText), `a failed test says why ("${testErrorText}")`);
  await shot(page, "03b-test-connection-error");
  await page.getByRole("link", { name: "Cancel" }).click();
  await page.getByRole("heading", { name: "Servers", exact: true }).waitFor();

  // --- add a streamable-HTTP server: test its connection, deny one tool -------------------------
  await page.getByRole("button", { name: "Add server" }).click();
  await page.getByRole("heading", { name: "Add a server" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill("everything");
  await page.getByLabel("Description (optional)").fill("The MCP reference server");
  check((await page.getByLabel("Transport").inputValue()) === "streamable_http", "Streamable HTTP is the default");
  await page.getByLabel("MCP endpoint URL").fill(EVERYTHING_URL);
  const testButton = page.getByRole("button", { name: "Test connection" });
  await testButton.click();
  // The button says it is working while the hub connects (the answer may already be back: not required).
  await page.getByText(/^Connected: \d+ tools\.$/).waitFor({ timeout: 30_000 });
  const toolBoxes = page.locator("fieldset.tools input[type=checkbox]");
  const toolCount = await toolBoxes.count();
  check(toolCount >= 10, `the test lists the server's tools (${toolCount})`);
  check((await page.locator("fieldset.tools input:checked").count()) === toolCount, "every tool starts allowed");
  check((await page.getByLabel(/^Allowed tools/).count()) === 0, "the toggles replace the free-text list");
  await page.getByRole("checkbox", { name: new RegExp(`^${DENIED_TOOL}\\b`) }).uncheck();
  check(
    (await page.locator("fieldset.tools input:checked").count()) === toolCount - 1,
    `${DENIED_TOOL} is turned off`,
  );
  const testPosts = apiBodies.filter((b) => b.path === "/v1/servers/test");
  check(testPosts.length === 2 && testPosts.every((b) => b.body.transport === "http"), "the test sends http");
  await assertEveryInputLabelled(page, "server form with tools");
  await shot(page, "03c-test-connection-tools");
  await page.getByRole("button", { name: "Add server" }).click();
  await page.locator('tr[data-server="everything"]').waitFor();
  await assertNoSecretInLocalStorage(page, "after adding a streamable-HTTP server");

  // --- an API validation error is shown next to the form ---------------------------------------
  await page.getByRole("button", { name: "Add server" }).click();
  await page.getByLabel("Name", { exact: true }).fill("bad name!");
  await page.getByLabel("Transport").selectOption("openapi");
  await page.getByLabel("OpenAPI document (URL or file path)").fill(SPEC_PATH);
  await page.getByRole("button", { name: "Add server" }).click();
  const formError = page.locator("#server-error");
  await formError.waitFor();
  const formErrorText = await formError.textContent();
  check(/^name: /.test(formErrorText), `the 422 detail is shown by field (got "${formErrorText}")`);
  await shot(page, "04-server-form-error");

  // --- add an "OpenAPI" server: the API receives http + spec_location -------------------------
  await page.getByLabel("Name", { exact: true }).fill("petstore");
  await page.getByLabel("Auth type").selectOption("byok");
  await page.getByLabel("Header name").fill("X-API-Key");
  await page.getByLabel("Header template").fill("{key}");
  await assertEveryInputLabelled(page, "OpenAPI server form");
  await shot(page, "05-server-form-openapi");
  await page.getByRole("button", { name: "Add server" }).click();
  await page.locator('tr[data-server="petstore"]').waitFor();
  await assertNoSecretInLocalStorage(page, "after adding an OpenAPI server");
  const petstoreRow = page.locator('tr[data-server="petstore"]');
  check((await petstoreRow.locator(".badge").textContent()) === "OpenAPI", "the list shows it as OpenAPI");

  const posted = apiBodies.filter((b) => b.method === "POST" && b.path === "/v1/servers");
  check(posted.length === 3, `three POST /v1/servers were sent (got ${posted.length})`);
  const everythingPost = posted.find((b) => b.body.name === "everything").body;
  check(
    Array.isArray(everythingPost.allowed_tools) &&
      everythingPost.allowed_tools.length === toolCount - 1 &&
      !everythingPost.allowed_tools.includes(DENIED_TOOL),
    "the saved allowlist is every tool but the denied one",
  );
  check(
    posted.every((b) => ["http", "sse", "stdio"].includes(b.body.transport)),
    "no request ever carried transport 'openapi'",
  );
  const everything = posted.find((b) => b.body.name === "everything").body;
  check(everything.transport === "http" && everything.url === EVERYTHING_URL, "streamable HTTP → http + url");
  const petstore = posted.filter((b) => b.body.name === "petstore").at(-1).body;
  check(petstore.transport === "http" && petstore.spec_location === SPEC_PATH, "OpenAPI → http + spec_location");
  check(!("url" in petstore), "the OpenAPI server is sent without a url");
  check(apiBodies.every((b) => b.body.transport !== "openapi"), "no server request carried 'openapi'");
  check(
    petstore.auth_type === "byok" &&
      petstore.byok_mode === "header" &&
      petstore.byok_name === "X-API-Key" &&
      petstore.byok_template === "{key}",
    "BYOK sends where the key goes and its header template",
  );

  // --- edit: the stored http + spec reads back as OpenAPI; saving sends http again -------------
  await page.getByRole("link", { name: "Edit petstore" }).click();
  await page.getByRole("heading", { name: "Edit server petstore" }).waitFor();
  await page.getByLabel("OpenAPI document (URL or file path)").waitFor();
  check((await page.getByLabel("Transport").inputValue()) === "openapi", "a stored http + spec edits as OpenAPI");
  check(
    /Last read /.test(await page.locator("#server-spec-hint").textContent()),
    "the form says when the spec was last read",
  );
  const [refreshed] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/refresh") && r.request().method() === "POST"),
    page.getByRole("button", { name: "Read the spec again" }).click(),
  ]);
  check(refreshed.status() === 200, `reading the spec again succeeds (got ${refreshed.status()})`);
  await page.getByLabel("Description (optional)").fill("Pets, from an OpenAPI document");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.locator('tr[data-server="petstore"]').waitFor();
  const patched = apiBodies.filter((b) => b.method === "PATCH");
  check(
    patched.length === 1 && patched[0].body.transport === "http" && patched[0].body.spec_location === SPEC_PATH,
    "the update is sent as http + spec_location",
  );
  await assertEveryInputLabelled(page, "servers list");
  // The list's own test: health and tool count of the row.
  const everythingRow = page.locator('tr[data-server="everything"]');
  await page.getByRole("button", { name: "Test everything" }).click();
  await everythingRow.locator(".health-ok", { hasText: "Last connect ok" }).waitFor({ timeout: 30_000 });
  const countText = await everythingRow.locator(".tool-count").textContent();
  check(countText === `${toolCount - 1} of ${toolCount}`, `the list shows the tool count ("${countText}")`);
  check(
    (await petstoreRow.locator(".health").textContent()) === "Not checked yet",
    "a server nothing connected to yet is not checked",
  );
  await shot(page, "06-servers");
  await readmeShot(page, "servers");

  // --- a saved server's tools, tested as saved: the toggles show its stored allowlist -------------
  await page.getByRole("link", { name: "Edit everything" }).click();
  await page.getByRole("heading", { name: "Edit server everything" }).waitFor();
  await page.getByRole("button", { name: "Test connection" }).click();
  await page.getByText(/^Connected: \d+ tools\.$/).waitFor({ timeout: 30_000 });
  check(
    !(await page.getByRole("checkbox", { name: new RegExp(`^${DENIED_TOOL}\\b`) }).isChecked()) &&
      (await page.getByRole("checkbox", { name: /^echo\b/ }).isChecked()),
    "the edit page's toggles show the saved allowlist",
  );
  check(
    apiBodies.filter((b) => /^\/v1\/servers\/[^/]+\/test$/.test(b.path)).length === 2,
    "a saved server is tested by id (list and edit page)",
  );
  await page.getByRole("link", { name: "Cancel" }).click();
  await page.getByRole("heading", { name: "Servers", exact: true }).waitFor();
  const idOf = async (name) =>
    (await page.locator(`tr[data-server="${name}"] th a`).getAttribute("href")).split("/").pop();
  const petstoreId = await idOf("petstore");

  // --- an OAuth2 server: "Discover" fills its endpoints from the real authorization server -------
  await page.getByRole("button", { name: "Add server" }).click();
  await page.getByLabel("Name", { exact: true }).fill("notes");
  await page.getByLabel("Auth type").selectOption("oauth2");
  await page.getByRole("button", { name: "Discover" }).click();
  await page.locator("#discover-error").waitFor();
  check(/enter it first/.test(await page.locator("#discover-error").textContent()), "discover asks for the URL first");
  await page.getByLabel("MCP endpoint URL").fill(`${ISSUER}/mcp`);
  await page.getByRole("button", { name: "Discover" }).click();
  await page.getByText(/^Found the authorization server /).waitFor({ timeout: 30_000 });
  const metadata = await (await fetch(`${ISSUER}/.well-known/openid-configuration`)).json();
  check(
    (await page.getByLabel("Authorization URL").inputValue()) === metadata.authorization_endpoint &&
      (await page.getByLabel("Token URL").inputValue()) === metadata.token_endpoint &&
      (await page.getByLabel(/^Registration URL/).inputValue()) === metadata.registration_endpoint,
    "discover fills the authorization, token and registration URLs",
  );
  check((await page.getByLabel(/^Scopes/).inputValue()) === "mcp:tools", "discover fills the scopes");
  check((await page.getByLabel(/^Issuer/).inputValue()) === metadata.issuer, "discover fills the issuer (for the iss check)");
  await assertEveryInputLabelled(page, "OAuth2 server form");
  await assertKeyboardReachesEverything(page, "main form", "OAuth2 server form");
  await shot(page, "06b-server-form-oauth2");
  await page.getByRole("button", { name: "Add server" }).click();
  await page.locator('tr[data-server="notes"]').waitFor();
  const notes = apiBodies.filter((b) => b.method === "POST" && b.body.name === "notes").at(-1).body;
  check(
    notes.auth_type === "oauth2" &&
      notes.authorization_url === metadata.authorization_endpoint &&
      notes.issuer === metadata.issuer,
    "the discovered endpoints are saved",
  );
  check(!("client_id" in notes), "empty OAuth fields are not sent");
  const notesId = await idOf("notes");

  // --- delete a server (with its confirm step) ------------------------------------------------
  await page.getByRole("button", { name: "Add server" }).click();
  await page.getByLabel("Name", { exact: true }).fill("scratch");
  await page.getByLabel("Transport").selectOption("stdio");
  await page.getByLabel("Command").fill("npx");
  await page.getByRole("button", { name: "Add server" }).click();
  await page.locator('tr[data-server="scratch"]').waitFor();
  await page.getByRole("button", { name: "Delete scratch" }).click();
  await page.getByRole("button", { name: "Confirm delete scratch" }).click();
  await page.locator('tr[data-server="scratch"]').waitFor({ state: "detached" });
  check(true, "a server is deleted after its confirm step");

  // --- users and keys --------------------------------------------------------------------------
  await page.getByRole("link", { name: "Users and keys" }).click();
  await page.getByRole("heading", { name: "Users and keys" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill("alice");
  await page.getByLabel("Email (optional)").fill("alice@example.com");
  await page.getByRole("button", { name: "Create user" }).click();
  await page.locator('tr[data-user="alice"]').waitFor();
  await assertNoSecretInLocalStorage(page, "after creating a user");

  await page.getByLabel("User", { exact: true }).selectOption({ label: "alice" });
  await page.getByLabel("Key name (optional)").fill("laptop");
  await page.getByRole("button", { name: "Create key" }).click();
  const newKey = page.locator("#new-key-value");
  await newKey.waitFor();
  const aliceKey = await newKey.inputValue();
  check(/^mcph_/.test(aliceKey), "the new key is shown once");
  secrets.add(aliceKey);
  await page.getByRole("button", { name: "Copy", exact: true }).click();
  await page.getByText("Copied", { exact: true }).waitFor();
  const clipboard = await page.evaluate(() => navigator.clipboard.readText());
  check(clipboard === aliceKey, "the copy button puts the key on the clipboard");
  await assertEveryInputLabelled(page, "users and keys");
  await shot(page, "07-users-new-key");
  await assertNoSecretInLocalStorage(page, "after creating a key");
  await page.getByRole("button", { name: "I have stored it" }).click();
  check((await page.locator("#new-key-value").count()) === 0, "the key is gone once dismissed");
  check(!(await page.content()).includes(aliceKey), "the page no longer holds the key");

  // A second key, revoked.
  await page.getByLabel("User", { exact: true }).selectOption({ label: "alice" });
  await page.getByLabel("Key name (optional)").fill("old");
  await page.getByRole("button", { name: "Create key" }).click();
  const oldKey = await page.locator("#new-key-value").inputValue();
  secrets.add(oldKey);
  await page.getByRole("button", { name: "I have stored it" }).click();
  const oldPrefix = oldKey.slice(0, 12);
  const revokeButtons = page.getByRole("button", { name: /^Revoke key / });
  const before = await revokeButtons.count();
  await revokeButtons.last().click();
  await page.getByText(/^Revoked key /).waitFor();
  check((await revokeButtons.count()) === before - 1, `a key is revoked (${oldPrefix}…)`);
  await assertNoSecretInLocalStorage(page, "after revoking a key");

  // --- client setup ----------------------------------------------------------------------------
  await page.getByRole("link", { name: "Client setup" }).click();
  await page.getByRole("heading", { name: "Client setup" }).waitFor();
  await page.getByLabel("Client").selectOption("cursor");
  await page.getByLabel("Endpoint").selectOption("everything");
  const oauthConfig = JSON.parse(await page.locator("#setup-config").inputValue());
  check(
    JSON.stringify(oauthConfig) === JSON.stringify({ mcpServers: { "mcp-hub-everything": { url: `${HUB_URL}/mcp/everything` } } }),
    "Cursor with OAuth (the default): the URL alone, Cursor signs in itself",
  );
  await page.locator("#setup-auth").selectOption("key");
  const config = JSON.parse(await page.locator("#setup-config").inputValue());
  check(config.mcpServers["mcp-hub-everything"].url === `${HUB_URL}/mcp/everything`, "Cursor config for one server");
  check(config.mcpServers["mcp-hub-everything"].headers.Authorization.startsWith("Bearer "), "Cursor with a key header");
  check(!JSON.stringify(config).includes(ADMIN_KEY), "the config never carries the signed-in key");
  await page.getByLabel("Client").selectOption("claude_desktop");
  check(
    JSON.parse(await page.locator("#setup-config").inputValue()).mcpServers["mcp-hub-everything"].command === "npx",
    "Claude Desktop with a key goes through npx mcp-remote",
  );
  await page.locator("#setup-auth").selectOption("oauth");
  check(
    (await page.locator("#setup-config").inputValue()) === `${HUB_URL}/mcp/everything`,
    "Claude Desktop with OAuth: the URL for Settings → Connectors",
  );
  await page.getByText("Add custom connector", { exact: false }).waitFor();
  await page.getByRole("button", { name: "Copy configuration" }).click();
  await page.getByText("Copied", { exact: true }).waitFor();
  await assertEveryInputLabelled(page, "client setup");
  await shot(page, "08-client-setup");

  // --- my connections (the admin is a user too): BYOK key, write-only -------------------------
  await page.getByRole("link", { name: "My connections" }).click();
  await page.getByRole("heading", { name: "My connections" }).waitFor();
  const card = page.locator('li[data-server="petstore"]');
  await card.waitFor();
  check((await card.locator(".state").textContent()) === "Not connected", "a BYOK server starts not connected");
  await card.getByLabel("Your API key for petstore").fill("upstream-secret-123");
  await card.getByRole("button", { name: "Save key" }).click();
  await page.getByText("Saved your key for petstore.").waitFor();
  await card.locator(".state", { hasText: /^Connected$/ }).waitFor();
  check(true, "after saving the key it is connected");
  check((await card.getByLabel("Replace your API key for petstore").inputValue()) === "", "the key field is cleared");
  check(!(await page.content()).includes("upstream-secret-123"), "the saved key is never shown again");
  secrets.add("upstream-secret-123");
  await assertEveryInputLabelled(page, "my connections");
  await assertNoSecretInLocalStorage(page, "after saving a BYOK key");
  await shot(page, "09-connections");
  await card.getByRole("button", { name: "Remove key for petstore" }).click();
  await page.getByText("Removed your key for petstore.").waitFor();
  await card.locator(".state", { hasText: /^Not connected$/ }).waitFor();
  check(true, "removing the key disconnects");

  // --- the user signs in with their own key ---------------------------------------------------
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to mcp-hub" }).waitFor();
  check((await page.evaluate(() => window.sessionStorage.length)) === 0, "signing out forgets the key");
  await page.getByLabel("API key").fill(aliceKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "My connections" }).waitFor();
  check(page.url().endsWith("/ui/connections"), "a user lands on My connections");
  check((await page.getByRole("link", { name: "Servers" }).count()) === 0, "a user sees no admin pages");
  await assertNoSecretInLocalStorage(page, "after the user signs in");
  await shot(page, "10-user-connections");

  // Every server alice may use is listed, connected or not.
  await page.locator('li[data-server="notes"]').waitFor();
  const states = Object.fromEntries(
    await page.locator("li.connection").evaluateAll((cards) =>
      cards.map((c) => [c.getAttribute("data-server"), c.querySelector(".state")?.textContent]),
    ),
  );
  check(
    states.notes === "Not connected" && states.petstore === "Not connected" && states.everything === "No connection needed",
    `My connections lists every usable server with its state (${JSON.stringify(states)})`,
  );
  await assertKeyboardReachesEverything(page, "main", "my connections");

  // --- the connect link (what the hub's MCP errors and `{alias}__connect` tools hand out) --------
  await page.goto(`${HUB_URL}/ui/servers/${notesId}/connect`);
  await page.getByRole("heading", { name: "Connect notes" }).waitFor();
  check((await page.getByRole("heading", { name: /API key/ }).count()) === 0, "an OAuth server offers no key form");
  await assertEveryInputLabelled(page, "connect page");
  await shot(page, "11-user-connect-page");

  // --- the user connects the OAuth server from My connections, through the real authorization server
  await page.getByRole("link", { name: "← My connections" }).click();
  const notesCard = page.locator('li[data-server="notes"]');
  await notesCard.locator(".state", { hasText: /^Not connected$/ }).waitFor();
  await context.setExtraHTTPHeaders({ "X-Test-User": "alice" }); // the test AS's "login"
  // The flow starts and ends on this page: wait for the way back through the hub's callback.
  const callback = page.waitForRequest((r) => r.url().startsWith(`${HUB_URL}/v1/oauth/callback`), {
    timeout: 30_000,
  });
  await notesCard.getByRole("button", { name: "Connect notes" }).click();
  await callback;
  await page.waitForURL(`${HUB_URL}/ui/connections`, { timeout: 30_000 });
  await context.setExtraHTTPHeaders({});
  await notesCard.waitFor();
  await notesCard.locator(".state", { hasText: /^Connected$/ }).waitFor();
  const expiry = await notesCard.locator(".muted").textContent();
  check(/^expires in 1 h$/.test(expiry), `connected, with its expiry computed in the browser ("${expiry}")`);
  check(new URL(page.url()).pathname === "/ui/connections", "the flow returns to My connections");
  await assertNoSecretInLocalStorage(page, "after the OAuth flow");
  await shot(page, "12-user-oauth-connected");
  await readmeShot(page, "connections");
  await notesCard.getByRole("button", { name: "Disconnect notes" }).click();
  await page.getByText("Disconnected notes.").waitFor();
  await notesCard.locator(".state", { hasText: /^Not connected$/ }).waitFor();
  check(true, "disconnecting removes the user's OAuth connection; the server stays listed");
  await assertNoSecretInLocalStorage(page, "after disconnecting");

  // --- the user saves a BYOK key (write-only) through the connect page -----------------------
  await page.goto(`${HUB_URL}/ui/servers/${petstoreId}/connect`);
  await page.getByRole("heading", { name: /^Connect / }).waitFor();
  await page.getByLabel(/^Your API key for /).fill("alice-upstream-key-456");
  secrets.add("alice-upstream-key-456");
  await page.getByRole("button", { name: "Save key" }).click();
  await page.waitForURL(/\/ui\/connections/);
  const aliceByok = page.locator('li[data-server="petstore"]');
  await aliceByok.locator(".state", { hasText: /^Connected$/ }).waitFor();
  check(!(await page.content()).includes("alice-upstream-key-456"), "the user's key is never shown again");
  await assertNoSecretInLocalStorage(page, "after the user saves a BYOK key");
  await shot(page, "13-user-byok-connected");
  await page.getByRole("link", { name: "Client setup" }).click();
  await page.getByRole("heading", { name: "Client setup" }).waitFor();
  await shot(page, "14-user-client-setup");
  await assertNoSecretInLocalStorage(page, "on the user's client setup page");

  // --- a deep link reloads into the app (SPA fallback), still signed in in this tab ----------
  await page.reload();
  await page.getByRole("heading", { name: "Client setup" }).waitFor();
  check(true, "a reload of a deep link stays in the app and signed in");

  // --- a revoked key ends the session: back to sign-in, with the reason -----------------------
  const admin = { Authorization: `Bearer ${ADMIN_KEY}` };
  const keys = await (await fetch(`${HUB_URL}/v1/keys?limit=200`, { headers: admin })).json();
  const laptop = keys.items.find((k) => k.name === "laptop");
  const revoked = await fetch(`${HUB_URL}/v1/keys/${laptop.id}`, { method: "DELETE", headers: admin });
  check(revoked.ok, "the admin API revokes the user's key");
  await page.getByRole("link", { name: "My connections" }).click();
  await page.getByRole("heading", { name: "Sign in to mcp-hub" }).waitFor();
  check((await page.getByText(/^You were signed out: /).count()) === 1, "the sign-in page says why");
  check((await page.evaluate(() => window.sessionStorage.length)) === 0, "the refused key is forgotten");
  await assertNoSecretInLocalStorage(page, "after the key was revoked");
  await shot(page, "15-signed-out");
});
