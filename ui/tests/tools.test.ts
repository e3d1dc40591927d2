import { describe, expect, it } from "vitest";
import { allowedCount, isToolAllowed, toggleTool } from "../src/utils/tools";

const TOOLS = ["echo", "add", "pid"];

describe("tool toggles", () => {
  it("reads a blank allowlist as every tool allowed", () => {
    expect(TOOLS.map((t) => isToolAllowed("", t))).toEqual([true, true, true]);
    expect(TOOLS.map((t) => isToolAllowed("echo\n add \n", t))).toEqual([true, true, false]);
  });

  it("turns one tool off and back on, ending with 'all tools' again", () => {
    const off = toggleTool("", TOOLS, "pid", false);
    expect(off).toBe("echo\nadd");
    expect(toggleTool(off, TOOLS, "pid", true)).toBe("");
  });

  it("drops names the upstream no longer lists", () => {
    expect(toggleTool("echo\ngone", TOOLS, "add", true)).toBe("echo\nadd");
  });

  it("keeps the last allowed tool on (blank would mean every tool)", () => {
    const left = TOOLS.reduce((text, tool) => toggleTool(text, TOOLS, tool, false), "");
    expect(left).toBe("pid");
    expect(allowedCount(left, TOOLS)).toBe(1);
    expect(allowedCount("", TOOLS)).toBe(3);
  });
});
