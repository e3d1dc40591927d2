// A scripted browser for the hub's sign-in and consent pages: headless Debian Chromium driven by
// playwright-core (from ui/node_modules). Run by tests/authserver. Environment:
//   AUTHORIZE_URL    the URL an MCP client sent the user to
//   CALLBACK_PREFIX  the client's redirect URI; the run ends when the browser lands there
//   HUB_USER, HUB_PASSWORD   sign in with a password, or
//   HUB_API_KEY              sign in with an API key
// Prints one JSON line: {"final": url, "client": name, "redirectHost": host, "cookies": [...]}.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(import.meta.dirname, "../../ui/package.json"));
const { chromium } = require("playwright-core");

const AUTHORIZE_URL = process.env.AUTHORIZE_URL;
const CALLBACK_PREFIX = process.env.CALLBACK_PREFIX;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const landed = page.waitForURL((url) => url.href.startsWith(CALLBACK_PREFIX), { timeout: 60000 });
  landed.catch(() => {});
  await page.goto(AUTHORIZE_URL);
  if (!(await page.$("#sign-in"))) {
    throw new Error(`no sign-in form; the page says: ${(await page.textContent("body")).slice(0, 500)}`);
  }
  if (process.env.HUB_API_KEY) {
    await page.fill("#api_key", process.env.HUB_API_KEY);
  } else {
    await page.fill("#username", process.env.HUB_USER);
    await page.fill("#password", process.env.HUB_PASSWORD);
  }
  await page.click("#sign-in");
  // Consent already given for this client: signing in sends the browser straight back.
  const next = await Promise.race([
    page.waitForSelector("#approve", { timeout: 30000 }).then(() => "consent"),
    landed.then(() => "landed"),
  ]);
  let client = null;
  let redirectHost = null;
  let connect = [];
  if (next === "consent") {
    client = await page.textContent("#client-name");
    redirectHost = await page.textContent("#redirect-host");
    connect = await page.$$eval("button.connect", (buttons) => buttons.map((b) => b.dataset.server));
    await page.click("#approve");
  }
  await landed;
  const cookies = (await context.cookies()).map(({ name, httpOnly, secure, sameSite, path }) =>
    ({ name, httpOnly, secure, sameSite, path }));
  console.log(JSON.stringify({ final: page.url(), consentShown: next === "consent", client, redirectHost, connect, cookies }));
} finally {
  await browser.close();
}
