// Hash routes, so a reload (or an offline reopen) keeps the screen.
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { name: "home" }
  | { name: "new-observation" }
  | { name: "observation"; documentId: string }
  | { name: "plan"; documentId: string }
  | { name: "session"; documentId: string }
  | { name: "themes" }
  | { name: "cpd" }
  | { name: "expertise" }
  | { name: "find" }
  | { name: "progress"; userId: string }
  | { name: "theme"; documentId: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "");
  let m = path.match(/^\/observations\/([^/]+)$/);
  if (m) return { name: "observation", documentId: decodeURIComponent(m[1]) };
  m = path.match(/^\/plan\/([^/]+)$/);
  if (m) return { name: "plan", documentId: decodeURIComponent(m[1]) };
  m = path.match(/^\/sessions\/([^/]+)$/);
  if (m) return { name: "session", documentId: decodeURIComponent(m[1]) };
  m = path.match(/^\/themes\/([^/]+)$/);
  if (m) return { name: "theme", documentId: decodeURIComponent(m[1]) };
  m = path.match(/^\/progress\/([^/]+)$/);
  if (m) return { name: "progress", userId: decodeURIComponent(m[1]) };
  if (path === "/find") return { name: "find" };
  if (path === "/themes") return { name: "themes" };
  if (path === "/cpd") return { name: "cpd" };
  if (path === "/expertise") return { name: "expertise" };
  if (path === "/new") return { name: "new-observation" };
  return { name: "home" };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", update);
    update(); // the hash may have changed between the first render and now
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return route;
}

export function navigate(hash: string): void {
  location.hash = hash;
}

export const observationHref = (url: string) => `#/observations/${url.replace(/^automerge:/, "")}`;
export const planHref = (url: string) => `#/plan/${url.replace(/^automerge:/, "")}`;
export const sessionHref = (url: string) => `#/sessions/${url.replace(/^automerge:/, "")}`;
export const themeHref = (url: string) => `#/themes/${url.replace(/^automerge:/, "")}`;
export const progressHref = (userId: string) => `#/progress/${encodeURIComponent(userId)}`;
