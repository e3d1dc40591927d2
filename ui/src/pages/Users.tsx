import { useEffect, useState } from "preact/hooks";
import { type ApiClient, apiErrorMessage } from "../api/client";
import type { KeyCreated, KeyOut, UserOut } from "../api/types";
import { CopyButton, ErrorText, Notice, PageTitle, formatDate, inputChecked, inputValue } from "../components/common";

export function UsersPage(props: { client: ApiClient }) {
  const { client } = props;
  const [users, setUsers] = useState<UserOut[]>([]);
  const [usersCursor, setUsersCursor] = useState<string | null>(null);
  const [keys, setKeys] = useState<KeyOut[]>([]);
  const [keysCursor, setKeysCursor] = useState<string | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);

  const [userName, setUserName] = useState("");
  const [userEmail, setUserEmail] = useState("");
  const [userError, setUserError] = useState<string | null>(null);

  const [keyUser, setKeyUser] = useState("");
  const [keyName, setKeyName] = useState("");
  const [keyAdmin, setKeyAdmin] = useState(false);
  const [keyError, setKeyError] = useState<string | null>(null);
  const [created, setCreated] = useState<KeyCreated | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const loadUsers = async (after: string | null) => {
    const page = await client.listUsers(after);
    setUsers((current) => (after ? [...current, ...page.items] : page.items));
    setUsersCursor(page.next_cursor);
  };
  const loadKeys = async (after: string | null) => {
    const page = await client.listKeys(after);
    setKeys((current) => (after ? [...current, ...page.items] : page.items));
    setKeysCursor(page.next_cursor);
  };

  useEffect(() => {
    Promise.all([loadUsers(null), loadKeys(null)]).catch((caught) =>
      setLoadError(apiErrorMessage(caught, "Could not load users and keys.")),
    );
  }, [client]);

  const userNames = new Map(users.map((user) => [user.id, user.name]));

  const createUser = async (event: Event) => {
    event.preventDefault();
    setUserError(null);
    try {
      const email = userEmail.trim();
      const user = await client.createUser({ name: userName.trim(), ...(email ? { email } : {}) });
      setUsers((current) => [...current, user]);
      setUserName("");
      setUserEmail("");
      setKeyUser(user.id);
      setNotice(`Created user ${user.name}.`);
    } catch (caught) {
      setUserError(apiErrorMessage(caught, "Could not create the user."));
    }
  };

  const createKey = async (event: Event) => {
    event.preventDefault();
    setKeyError(null);
    if (!keyUser) {
      setKeyError("Choose the user the key is for.");
      return;
    }
    try {
      const name = keyName.trim();
      const key = await client.createKey({ user_id: keyUser, is_admin: keyAdmin, ...(name ? { name } : {}) });
      const { key: _plaintext, ...listed } = key;
      setKeys((current) => [...current, listed]);
      setCreated(key);
      setKeyName("");
      setKeyAdmin(false);
    } catch (caught) {
      setKeyError(apiErrorMessage(caught, "Could not create the key."));
    }
  };

  const revoke = async (key: KeyOut) => {
    try {
      const revoked = await client.revokeKey(key.id);
      setKeys((current) => current.map((k) => (k.id === key.id ? revoked : k)));
      setNotice(`Revoked key ${key.prefix}….`);
    } catch (caught) {
      setLoadError(apiErrorMessage(caught, "Could not revoke the key."));
    }
  };

  return (
    <main id="main">
      <PageTitle>Users and keys</PageTitle>
      <ErrorText message={loadError} />
      <Notice message={notice} />

      <section aria-labelledby="users-heading">
        <h2 id="users-heading">Users</h2>
        <form class="card inline-form" onSubmit={createUser} aria-describedby={userError ? "user-error" : undefined}>
          <div>
            <label for="user-name">Name</label>
            <input id="user-name" value={userName} onInput={(e) => setUserName(inputValue(e))} required />
          </div>
          <div>
            <label for="user-email">Email (optional)</label>
            <input id="user-email" type="email" value={userEmail} onInput={(e) => setUserEmail(inputValue(e))} />
          </div>
          <button type="submit" class="primary">
            Create user
          </button>
          <ErrorText id="user-error" message={userError} />
        </form>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Email</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {users.map((user) => (
                <tr key={user.id} data-user={user.name}>
                  <th scope="row">{user.name}</th>
                  <td>{user.email ?? "—"}</td>
                  <td>{user.disabled ? "Disabled" : "Active"}</td>
                  <td>{formatDate(user.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {usersCursor ? (
          <button type="button" onClick={() => loadUsers(usersCursor)}>
            More users
          </button>
        ) : null}
      </section>

      <section aria-labelledby="keys-heading">
        <h2 id="keys-heading">API keys</h2>
        <form class="card inline-form" onSubmit={createKey} aria-describedby={keyError ? "key-error" : undefined}>
          <div>
            <label for="key-user">User</label>
            <select id="key-user" value={keyUser} onChange={(e) => setKeyUser(inputValue(e))} required>
              <option value="">Choose a user…</option>
              {users.map((user) => (
                <option key={user.id} value={user.id}>
                  {user.name}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="key-name">Key name (optional)</label>
            <input id="key-name" value={keyName} onInput={(e) => setKeyName(inputValue(e))} placeholder="laptop" />
          </div>
          <label class="check">
            <input type="checkbox" checked={keyAdmin} onChange={(e) => setKeyAdmin(inputChecked(e))} />
            Admin key
          </label>
          <button type="submit" class="primary">
            Create key
          </button>
          <ErrorText id="key-error" message={keyError} />
        </form>

        {created ? (
          <div class="card new-key" role="region" aria-labelledby="new-key-heading">
            <h3 id="new-key-heading">New key for {userNames.get(created.user_id) ?? created.user_id}</h3>
            <p>This is the only time the key is shown. Copy it now and give it to its owner.</p>
            <label for="new-key-value">API key</label>
            <div class="copy-row">
              <input id="new-key-value" class="mono" readOnly value={created.key} onFocus={(e) => e.currentTarget.select()} />
              <CopyButton text={created.key} />
            </div>
            <button type="button" onClick={() => setCreated(null)}>
              I have stored it
            </button>
          </div>
        ) : null}

        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">User</th>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Last used</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.map((key) => (
                <tr key={key.id} data-key={key.prefix}>
                  <th scope="row" class="mono">
                    {key.prefix}…
                  </th>
                  <td>{userNames.get(key.user_id) ?? key.user_id}</td>
                  <td>{key.name ?? "—"}</td>
                  <td>{key.is_admin ? "Admin" : "User"}</td>
                  <td>{formatDate(key.last_used_at)}</td>
                  <td>{key.revoked_at ? `Revoked ${formatDate(key.revoked_at)}` : "Active"}</td>
                  <td class="actions">
                    {key.revoked_at ? null : (
                      <button type="button" onClick={() => revoke(key)}>
                        Revoke<span class="visually-hidden"> key {key.prefix}</span>
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {keysCursor ? (
          <button type="button" onClick={() => loadKeys(keysCursor)}>
            More keys
          </button>
        ) : null}
      </section>
    </main>
  );
}
