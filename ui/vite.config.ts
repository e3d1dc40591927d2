import { defineConfig } from "vitest/config";

// The hub serves the build at /ui (mcp_hub/ui.py); the files ship inside the Python package.
export default defineConfig({
  base: "/ui/",
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: "../mcp_hub/ui_dist",
    emptyOutDir: true,
    // No inline scripts or data: URLs for assets: the hub's Content-Security-Policy forbids them.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
