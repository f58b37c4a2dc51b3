// "Download my records": every record about the signed-in person, as this device holds it,
// saved as JSON and as a readable page to print. Made on the device from its own copies, so it
// works offline; the server's formal subject access export is `fieldbook subject-access`.
import type { RecordStore } from "./records";
import type { Me } from "./session";
import type { RecordDoc } from "./types";

/** Records about the person: observations of their practice and their own plans. (What they
 *  wrote about others is those people's to ask for.) */
const ABOUT_THEM = new Set(["practitioner", "plan-owner"]);

export interface Export {
  exportedAt: string;
  person: { id: string; name: string; role: string };
  records: ({ url: string } & RecordDoc)[];
}

/** The person's records, opened from this device's store (or the server) as needed. */
export async function exportOwnRecords(store: RecordStore, me: Me): Promise<Export> {
  const own = store.entries().filter((item) => ABOUT_THEM.has(item.entry.party));
  const records: Export["records"] = [];
  for (const item of own) {
    const handle = item.handle ?? (await store.open(item.entry.url));
    const doc = handle?.isReady() ? handle.doc() : undefined;
    if (doc) records.push({ url: item.entry.url, ...(JSON.parse(JSON.stringify(doc)) as RecordDoc) });
  }
  return { exportedAt: new Date().toISOString(), person: { id: me.id, name: me.name, role: me.role }, records };
}

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function value(v: unknown): string {
  if (v === null || v === undefined || v === "") return "<em>—</em>";
  if (typeof v !== "object") return escape(String(v));
  if (Array.isArray(v)) return v.length === 0 ? "<em>—</em>" : `<ol>${v.map((x) => `<li>${value(x)}</li>`).join("")}</ol>`;
  const entries = Object.entries(v as Record<string, unknown>);
  return `<dl>${entries.map(([k, x]) => `<dt>${escape(k)}</dt><dd>${value(x)}</dd>`).join("")}</dl>`;
}

/** A self-contained page (no scripts) to read and print. */
export function exportPage(data: Export): string {
  const sections = data.records
    .map((r) => {
      const title = r.type === "observation" ? "Observation" : "Development plan";
      const fields = Object.entries(r).filter(([k]) => k !== "url");
      return `<section><h2>${title}</h2><p>${escape(r.url)}</p><dl>${fields
        .map(([k, v]) => `<dt>${escape(k)}</dt><dd>${value(v)}</dd>`)
        .join("")}</dl></section>`;
    })
    .join("");
  return `<!doctype html><html lang="en-GB"><head><meta charset="utf-8"><title>Records of ${escape(data.person.name)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:50rem;margin:1rem auto;padding:0 1rem}section{break-inside:avoid;border-top:1px solid #999;margin-top:1.5rem}dt{font-weight:600;margin-top:.4rem}dd{margin-left:1rem}</style>
</head><body><h1>Records of ${escape(data.person.name)}</h1><p>Exported from Fieldbook on ${escape(data.exportedAt)}: ${data.records.length} records.</p>${sections}</body></html>`;
}

/** Saves `text` as a file through the browser's download. */
export function saveFile(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
