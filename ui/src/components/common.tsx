import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { href, onLinkClick } from "../router";

export function inputValue(event: Event): string {
  return (event.currentTarget as HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement).value;
}

export function inputChecked(event: Event): boolean {
  return (event.currentTarget as HTMLInputElement).checked;
}

/** The `<option>`s of a `<select>` whose choices are a `{value, label}` list. */
export function Options(props: { options: ReadonlyArray<{ value: string; label: string }> }) {
  return (
    <>
      {props.options.map((option) => (
        <option value={option.value} key={option.value}>
          {option.label}
        </option>
      ))}
    </>
  );
}

export function Link(props: { to: string; children: ComponentChildren; class?: string; current?: boolean }) {
  return (
    <a
      href={href(props.to)}
      onClick={onLinkClick(props.to)}
      class={props.class}
      aria-current={props.current ? "page" : undefined}
    >
      {props.children}
    </a>
  );
}

/** An error next to the form it belongs to; announced by screen readers. */
export function ErrorText(props: { id?: string; message: string | null }) {
  if (!props.message) return null;
  return (
    <p class="error" role="alert" id={props.id}>
      {props.message}
    </p>
  );
}

export function Notice(props: { message: string | null }) {
  return (
    <p class="notice" role="status" aria-live="polite">
      {props.message ?? ""}
    </p>
  );
}

export function CopyButton(props: { text: string; label?: string }) {
  const [copied, setCopied] = useState<string>("");
  // "Copied" speaks of this text only; a new text has not been copied yet.
  useEffect(() => setCopied(""), [props.text]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.text);
      setCopied("Copied");
    } catch {
      setCopied("Copy failed: select the text and copy it by hand");
    }
  };
  return (
    <span class="copy">
      <button type="button" onClick={copy}>
        {props.label ?? "Copy"}
      </button>
      <span role="status" aria-live="polite" class="copy-status">
        {copied}
      </span>
    </span>
  );
}

/** The page title takes focus on navigation so keyboard and screen-reader users land on the new page. */
export function PageTitle(props: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {props.children}
    </h1>
  );
}

export function formatDate(value: string | null): string {
  if (!value) return "—";
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(value);
  const date = new Date(hasZone ? value : `${value}Z`);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}
