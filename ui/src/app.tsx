import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiClient } from "./api/client";
import { Link } from "./components/common";
import { ClientSetupPage } from "./pages/ClientSetup";
import { ConnectPage } from "./pages/Connect";
import { ConnectionsPage } from "./pages/Connections";
import { ServerFormPage } from "./pages/ServerForm";
import { ServersPage } from "./pages/Servers";
import { SignIn } from "./pages/SignIn";
import { UsersPage } from "./pages/Users";
import { navigate, useRoute } from "./router";
import { type Session, clearSession, loadSession, saveSession } from "./utils/session";

const ADMIN_NAV = [
  { to: "/servers", label: "Servers" },
  { to: "/users", label: "Users and keys" },
  { to: "/connections", label: "My connections" },
  { to: "/setup", label: "Client setup" },
];
const USER_NAV = [
  { to: "/connections", label: "My connections" },
  { to: "/setup", label: "Client setup" },
];

function homeOf(session: Session): string {
  return session.role === "admin" ? "/servers" : "/connections";
}

function Page(props: { route: string; session: Session; client: ApiClient }) {
  const { route, session, client } = props;
  const admin = session.role === "admin";
  const connectMatch = /^\/servers\/([^/]+)\/connect$/.exec(route);
  if (connectMatch?.[1]) {
    const serverId = decodeURIComponent(connectMatch[1]);
    return <ConnectPage key={serverId} client={client} serverId={serverId} />;
  }
  if (admin && route === "/servers") return <ServersPage client={client} />;
  if (admin && route === "/servers/new") return <ServerFormPage client={client} serverId={null} />;
  const serverMatch = /^\/servers\/([^/]+)$/.exec(route);
  if (admin && serverMatch?.[1]) {
    return <ServerFormPage key={serverMatch[1]} client={client} serverId={decodeURIComponent(serverMatch[1])} />;
  }
  if (admin && route === "/users") return <UsersPage client={client} />;
  if (route === "/connections") return <ConnectionsPage client={client} />;
  if (route === "/setup") return <ClientSetupPage client={client} />;
  return <Redirect to={homeOf(session)} />;
}

function Redirect(props: { to: string }) {
  useEffect(() => navigate(props.to), [props.to]);
  return null;
}

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const route = useRoute();
  const [signedOutBecause, setSignedOutBecause] = useState<string | null>(null);
  const client = useMemo(
    () =>
      session
        ? new ApiClient(session.key, "", undefined, (message) => {
            clearSession();
            setSession(null);
            setSignedOutBecause(`You were signed out: ${message}`);
          })
        : null,
    [session],
  );

  const signIn = (next: Session) => {
    setSignedOutBecause(null);
    saveSession(next);
    setSession(next);
    // A deep link (such as a connect link from an MCP client) survives the sign-in.
    if (route === "/") navigate(homeOf(next));
  };
  const signOut = () => {
    clearSession();
    setSession(null);
    navigate("/");
  };

  const nav = session?.role === "admin" ? ADMIN_NAV : USER_NAV;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">mcp-hub</span>
        {session ? (
          <>
            <nav aria-label="Main">
              <ul>
                {nav.map((item) => (
                  <li key={item.to}>
                    <Link to={item.to} current={route === item.to || route.startsWith(`${item.to}/`)}>
                      {item.label}
                    </Link>
                  </li>
                ))}
              </ul>
            </nav>
            <span class="who">{session.role === "admin" ? "Admin" : "User"}</span>
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          </>
        ) : null}
      </header>
      {session && client ? <Page route={route} session={session} client={client} /> : <SignIn onSignedIn={signIn} notice={signedOutBecause} />}
    </>
  );
}
