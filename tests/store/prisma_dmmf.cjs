// Validates a Prisma schema read from stdin with Prisma's own validator (the WASM build of prisma-fmt,
// which runs offline) and prints the datamodel part of its DMMF as JSON on stdout.
// Exit 0: valid, DMMF printed. Exit 1: invalid, Prisma's error (P1012 ...) on stderr.
// Used by tests/store/test_prisma_schema.py; `.cjs` because the root package.json is not an ES module.
"use strict";

const fs = require("node:fs");
const wasm = require("@prisma/prisma-schema-wasm");

const schema = fs.readFileSync(0, "utf8");
const params = JSON.stringify({ prismaSchema: [["schema.prisma", schema]], noColor: true });

try {
  wasm.validate(params);
} catch (error) {
  // validate throws a JSON string {error_code, message}: print "P1012: <readable message>" when it is one.
  let text = String(error && error.message ? error.message : error);
  try {
    const parsed = JSON.parse(text);
    text = `${parsed.error_code}: ${parsed.message}`;
  } catch {
    // not JSON: keep the raw text
  }
  process.stderr.write(text + "\n");
  process.exit(1);
}

// The full DMMF also carries the generated client's query schema; only the datamodel is compared.
const dmmf = JSON.parse(wasm.get_dmmf(params));
process.stdout.write(JSON.stringify(dmmf.datamodel));
