// Vite build for the Fieldbook web app. The service worker (src/sw.ts) is built as its own
// entry at dist/sw.js; after the bundle is written, `precacheManifest` fills in the list of
// files it precaches (the app shell: index.html and every hashed asset).
import { defineConfig } from "vite";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const PLACEHOLDER = "__FIELDBOOK_PRECACHE__";

function listFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

function precacheManifest() {
  let outDir = "dist";
  return {
    name: "fieldbook-precache-manifest",
    apply: "build",
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    closeBundle() {
      const swPath = join(outDir, "sw.js");
      const files = listFiles(outDir)
        .map((path) => relative(outDir, path).split("\\").join("/"))
        .filter((file) => file !== "sw.js" && !file.endsWith(".map"))
        .sort();
      const hash = createHash("sha256");
      for (const file of files) hash.update(file).update(readFileSync(join(outDir, file)));
      const manifest = JSON.stringify({ version: hash.digest("hex").slice(0, 16), files: ["./", ...files] });
      const source = readFileSync(swPath, "utf8");
      const pattern = new RegExp(`(["'\`])${PLACEHOLDER}\\1`);
      if (!pattern.test(source)) throw new Error("sw.js: precache placeholder not found");
      writeFileSync(swPath, source.replace(pattern, JSON.stringify(manifest)));
    },
  };
}

export default defineConfig({
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  plugins: [precacheManifest()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    assetsInlineLimit: 0,
    rollupOptions: {
      input: { main: resolve(import.meta.dirname, "index.html"), sw: resolve(import.meta.dirname, "src/sw.ts") },
      output: {
        entryFileNames: (chunk) => (chunk.name === "sw" ? "sw.js" : "assets/[name]-[hash].js"),
      },
    },
  },
  server: {
    proxy: {
      "/v1": { target: process.env.FIELDBOOK_URL || "http://127.0.0.1:8080", ws: true, changeOrigin: true },
    },
  },
});
