// End-to-end: an admin adds a REST API described by an OpenAPI document through the server form and tests
// its connection before and after saving. Run by tests/ui/test_ui.py (which serves the document and the
// API on loopback, and skips this run until the hub has its OpenAPI backend, mcp_hub.openapi). Environment:
//   HUB_URL, ADMIN_KEY  as for admin.e2e.mjs
//   SPEC_URL            the OpenAPI document's URL
//   OPERATION           an operationId of that document; the hub must list a tool named after it
//   ARTIFACTS_DIR       where the screenshots go
import {
  ADMIN_KEY,
  HUB_URL,
  apiBodies,
  assertEveryInputLabelled,
  assertNoSecretInLocalStorage,
  check,
  required,
  run,
  shot,
  signIn,
} from "./harness.mjs";

const SPEC_URL = required("SPEC_URL");
const OPERATION = required("OPERATION");

run(async (page) => {
  await page.goto(`${HUB_URL}/ui/`);
  await signIn(page, ADMIN_KEY);
  await page.getByRole("heading", { name: "Servers", exact: true }).waitFor();
  await assertNoSecretInLocalStorage(page, "after sign-in");

  // --- the form, tested before it is saved: OpenAPI goes out as http + spec_location --------------
  await page.getByRole("button", { name: "Add server" }).click();
  await page.getByRole("heading", { name: "Add a server" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill("pets");
  await page.getByLabel("Transport").selectOption("openapi");
  await page.getByLabel("OpenAPI document (URL or file path)").fill(SPEC_URL);
  await page.getByRole("button", { name: "Test connection" }).click();
  await page.getByText(/^Connected: \d+ tools?\.$/).waitFor({ timeout: 30_000 });
  const names = await page.locator("fieldset.tools label.check .mono").allTextContents();
  const operation = new RegExp(OPERATION.replace(/[_-]/g, "[_-]?"), "i");
  check(names.some((name) => operation.test(name)), `the test lists the API's operation (${names.join(", ")})`);
  const tested = apiBodies.filter((b) => b.path === "/v1/servers/test");
  check(tested.length === 1, "one connection test was sent");
  check(
    tested[0].body.transport === "http" && tested[0].body.spec_location === SPEC_URL && !("url" in tested[0].body),
    "the test request carries http + spec_location, never 'openapi'",
  );
  await assertEveryInputLabelled(page, "OpenAPI server form with tools");
  await assertNoSecretInLocalStorage(page, "after testing an OpenAPI form");
  await shot(page, "openapi-01-form-tested");

  // --- saved, then tested again from the list ------------------------------------------------------
  await page.getByRole("button", { name: "Add server" }).click();
  const row = page.locator('tr[data-server="pets"]');
  await row.waitFor();
  check((await row.locator(".badge").textContent()) === "OpenAPI", "the list shows it as OpenAPI");
  const saved = apiBodies.filter((b) => b.method === "POST" && b.path === "/v1/servers").at(-1).body;
  check(saved.transport === "http" && saved.spec_location === SPEC_URL, "saved as http + spec_location");
  await page.getByRole("button", { name: "Test pets", exact: true }).click();
  await row.locator(".health-ok", { hasText: "Last connect ok" }).waitFor({ timeout: 30_000 });
  check((await row.locator(".tool-count").textContent()) === String(names.length), "the list shows its tool count");
  check(apiBodies.every((b) => b.body.transport !== "openapi"), "no request ever carried 'openapi'");
  await assertNoSecretInLocalStorage(page, "after saving an OpenAPI server");
  await shot(page, "openapi-02-servers");
});
