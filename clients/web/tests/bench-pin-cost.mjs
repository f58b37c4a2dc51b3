// What one PIN derivation costs (PBKDF2-SHA-256 at the vault's iteration count), in headless
// Chromium as the web app runs it: the wait a user has at each unlock, and what each guess
// costs someone who copied a browser profile. Median and spread of 9 runs, as JSON on stdout.
//   node tests/bench-pin-cost.mjs   (scripts/bench pin-cost writes bench-results/pin-cost.json)
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const vault = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../src/vault.ts"), "utf8");
const iterations = Number(/const ITERATIONS = ([\d_]+);/.exec(vault)[1].replace(/_/g, ""));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
// WebCrypto needs a secure context: a page from 127.0.0.1 is one.
const server = createServer((_, res) => res.end("<!doctype html><title>pin cost</title>"));
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  const runs = await page.evaluate(async (iterations) => {
    const material = await crypto.subtle.importKey("raw", new TextEncoder().encode("482913"), "PBKDF2", false, ["deriveKey"]);
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const times = [];
    for (let i = 0; i < 9; i++) {
      const start = performance.now();
      await crypto.subtle.deriveKey(
        { name: "PBKDF2", salt, iterations, hash: "SHA-256" },
        material,
        { name: "AES-GCM", length: 256 },
        false,
        ["encrypt"],
      );
      times.push(performance.now() - start);
    }
    return times;
  }, iterations);
  const sorted = [...runs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const ms = (x) => Math.round(x * 10) / 10;
  console.log(
    JSON.stringify(
      {
        bench: "pin-cost",
        iterations,
        runs: runs.length,
        medianMs: ms(median),
        minMs: ms(sorted[0]),
        maxMs: ms(sorted.at(-1)),
        // Every 6-digit PIN, one core, at that median.
        allSixDigitPinsCoreHours: Math.round((1e6 * median) / 3.6e6),
      },
      null,
      2,
    ),
  );
} finally {
  await browser.close();
  server.close();
}
