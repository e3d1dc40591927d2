import { describe, expect, it } from "vitest";
import { extractErrorMessage } from "../src/utils/errors";

describe("extractErrorMessage", () => {
  it("joins each msg of a FastAPI detail array, naming the field", () => {
    const body = {
      detail: [
        { loc: ["body", "name"], msg: "String should match pattern '^[A-Za-z0-9]'", type: "string_pattern_mismatch" },
        { loc: ["body", "url"], msg: "Value error, must be an absolute http:// or https:// URL", type: "value_error" },
        { loc: ["body"], msg: "Value error, an http server needs a url", type: "value_error" },
      ],
    };
    expect(extractErrorMessage(body, "Unprocessable Entity", 422)).toBe(
      "name: String should match pattern '^[A-Za-z0-9]'; url: must be an absolute http:// or https:// URL; an http server needs a url",
    );
  });

  it("returns a detail string as it is", () => {
    expect(extractErrorMessage({ detail: "this API key is not an admin key" }, "Forbidden", 403)).toBe(
      "this API key is not an admin key",
    );
  });

  it("reads a nested {error: string}, at the top level or inside detail", () => {
    expect(extractErrorMessage({ error: "invalid_grant" }, "Bad Request", 400)).toBe("invalid_grant");
    expect(extractErrorMessage({ detail: { error: "upstream unreachable" } }, "Bad Gateway", 502)).toBe(
      "upstream unreachable",
    );
    expect(
      extractErrorMessage({ error: "access_denied", error_description: "the user said no" }, "Bad Request", 400),
    ).toBe("access_denied: the user said no");
  });

  it("falls back to the status text, then the status", () => {
    expect(extractErrorMessage(null, "Internal Server Error", 500)).toBe("Internal Server Error");
    expect(extractErrorMessage({ detail: [] }, "Unprocessable Entity", 422)).toBe("Unprocessable Entity");
    expect(extractErrorMessage("<html>proxy error</html>", "Bad Gateway", 502)).toBe("Bad Gateway");
    expect(extractErrorMessage({ unexpected: 1 }, "", 418)).toBe("Request failed (HTTP 418)");
    expect(extractErrorMessage(undefined)).toBe("Request failed");
  });

  it("uses a short plain-text body (the OAuth callback answers in plain text)", () => {
    expect(extractErrorMessage("state expired", "Bad Request", 400)).toBe("state expired");
  });
});
