/** A minimal history router for paths under /ui (the hub answers every /ui path with the app). */
import { useEffect, useState } from "preact/hooks";

export const BASE = "/ui";

export function currentRoute(): string {
  const path = window.location.pathname;
  const inside = path.startsWith(BASE) ? path.slice(BASE.length) : path;
  return inside.replace(/\/+$/, "") || "/";
}

/** `route` may carry a query string (`/connections?connected=x`); the route itself is the path. */
export function navigate(route: string): void {
  const target = `${BASE}${route === "/" ? "/" : route}`;
  if (target !== window.location.pathname + window.location.search) window.history.pushState(null, "", target);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export function useRoute(): string {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return route;
}

export function href(route: string): string {
  return `${BASE}${route === "/" ? "/" : route}`;
}

/** Plain left clicks stay in the app; modified clicks (new tab...) keep the browser's behaviour. */
export function onLinkClick(route: string) {
  return (event: MouseEvent) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    navigate(route);
  };
}
