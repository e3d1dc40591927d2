// What every end-to-end script of the UI shares: Debian Chromium through playwright-core, checks that
// count, the "no token in localStorage" and accessibility assertions, screenshots, and the pass/fail line
// tests/ui/test_ui.py reads ("E2E PASSED <n> checks", or "E2E FAILED ..." with exit code 1).
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export const HUB_URL = required("HUB_URL").replace(/\/+$/, "");
export const ADMIN_KEY = required("ADMIN_KEY");
export const ARTIFACTS = path.resolve(
  process.env.ARTIFACTS_DIR ?? path.join(import.meta.dirname, "../../test-artifacts/ui"),
);
const README_IMG_DIR = process.env.README_IMG_DIR ? path.resolve(process.env.README_IMG_DIR) : null;

let checks = 0;
export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  checks += 1;
}

/** Every key and token the run has seen: none may ever show up in localStorage. */
export const secrets = new Set([ADMIN_KEY]);
/** Bodies of the UI's POST/PATCH requests under /v1/servers (to check what the API really received). */
export const apiBodies = [];
export const consoleProblems = [];
let currentPage = null;

export async function assertNoSecretInLocalStorage(page, step) {
  const entries = await page.evaluate(() => Object.entries(window.localStorage));
  const text = JSON.stringify(entries);
  check(!/mcph_|token|key/i.test(text), `${step}: localStorage holds no token or key (found ${text})`);
  for (const secret of secrets) check(!text.includes(secret), `${step}: localStorage does not hold a key`);
}

export async function assertEveryInputLabelled(page, step) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")]
      .filter((el) => el.type !== "hidden")
      .filter((el) => (el.labels?.length ?? 0) === 0 && !el.getAttribute("aria-label"))
      .map((el) => el.outerHTML.slice(0, 80)),
  );
  check(unlabelled.length === 0, `${step}: every input is labelled (unlabelled: ${unlabelled.join(", ")})`);
}

/**
 * Keyboard only: from the first control of `root`, Tab must reach every visible, enabled control in it
 * (inputs, selects, text areas, buttons, links) in turn, with no trap; Shift+Tab must come back.
 */
export async function assertKeyboardReachesEverything(page, root, step) {
  const total = await page.evaluate((selector) => {
    const controls = [...document.querySelector(selector).querySelectorAll("input, select, textarea, button, a[href]")]
      .filter((el) => !el.disabled && el.getClientRects().length > 0 && el.tabIndex >= 0);
    controls.forEach((el, i) => el.setAttribute("data-kb", String(i)));
    controls[0].focus();
    return controls.length;
  }, root);
  check(total >= 3, `${step}: there are controls to reach (${total})`);
  const seen = new Set(["0"]);
  for (let i = 0; i < total * 2 && seen.size < total; i++) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate(() => document.activeElement?.getAttribute("data-kb"));
    if (at !== null && at !== undefined) seen.add(at);
  }
  const missed = await page.evaluate(
    (reached) =>
      [...document.querySelectorAll("[data-kb]")]
        .filter((el) => !reached.includes(el.getAttribute("data-kb")))
        .map((el) => el.outerHTML.slice(0, 80)),
    [...seen],
  );
  check(missed.length === 0, `${step}: Tab reaches every control (${total}; missed: ${missed.join(", ")})`);
  await page.keyboard.press("Shift+Tab");
  const back = await page.evaluate(() => document.activeElement?.getAttribute("data-kb"));
  check(back !== null && back !== undefined, `${step}: Shift+Tab goes back within the form`);
  await page.evaluate(() => document.querySelectorAll("[data-kb]").forEach((el) => el.removeAttribute("data-kb")));
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

export async function readmeShot(page, name) {
  if (!README_IMG_DIR) return;
  mkdirSync(README_IMG_DIR, { recursive: true });
  await page.screenshot({ path: path.join(README_IMG_DIR, `${name}.png`) });
}

async function signedInRun(scenario) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: HUB_URL });
    const page = await context.newPage();
    currentPage = page;
    page.setDefaultTimeout(15_000);
    page.on("console", (message) => {
      if (message.type() === "error" && !/Failed to load resource/.test(message.text())) {
        consoleProblems.push(message.text());
      }
    });
    page.on("pageerror", (error) => consoleProblems.push(String(error)));
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.pathname.startsWith("/v1/servers") && ["POST", "PATCH"].includes(request.method())) {
        apiBodies.push({ method: request.method(), path: url.pathname, body: request.postDataJSON() ?? {} });
      }
    });
    await scenario(page, context);
    const cspProblems = consoleProblems.filter((p) => /Content Security Policy|Refused to/i.test(p));
    check(cspProblems.length === 0, `no CSP violations (${cspProblems.join(" | ")})`);
    check(consoleProblems.length === 0, `no script errors (${consoleProblems.join(" | ")})`);
    await context.close();
  } catch (error) {
    if (currentPage) {
      await currentPage.screenshot({ path: path.join(ARTIFACTS, "zz-failure.png"), fullPage: true }).catch(() => {});
      const shown = await currentPage.locator("[role=alert]").allTextContents().catch(() => []);
      console.error(`on ${currentPage.url()}; errors shown: ${JSON.stringify(shown)}`);
    }
    throw error;
  } finally {
    await browser.close();
  }
}

/** Runs `scenario(page, context)` in a fresh browser and prints the line the Python test reads. */
export function run(scenario) {
  signedInRun(scenario).then(
    () => {
      console.log(`E2E PASSED ${checks} checks; screenshots in ${ARTIFACTS}`);
    },
    (error) => {
      console.error(`E2E FAILED after ${checks} checks: ${error?.stack ?? error}`);
      process.exitCode = 1;
    },
  );
}

/** Signs in with `key` through the form, as a person would. */
export async function signIn(page, key) {
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
}
