import { useState } from "preact/hooks";
import { ApiClient, apiErrorMessage, probeRole } from "../api/client";
import { ErrorText, PageTitle, inputValue } from "../components/common";
import type { Session } from "../utils/session";

export function SignIn(props: { onSignedIn: (session: Session) => void; notice?: string | null }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError("Enter your mcp-hub API key.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const role = await probeRole(new ApiClient(trimmed));
      setKey("");
      props.onSignedIn({ key: trimmed, role });
    } catch (caught) {
      setError(apiErrorMessage(caught, "Sign-in failed."));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main">
      <PageTitle>Sign in to mcp-hub</PageTitle>
      <p>
        Use an API key from your hub admin (or the admin key the hub printed at its first start). It is kept only
        for this browser tab.
      </p>
      {props.notice ? (
        <p class="error" role="alert">
          {props.notice}
        </p>
      ) : null}
      <form onSubmit={submit} aria-describedby={error ? "signin-error" : undefined} class="card">
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={key}
          onInput={(e) => setKey(inputValue(e))}
          aria-invalid={error ? true : undefined}
          required
        />
        <ErrorText id="signin-error" message={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
