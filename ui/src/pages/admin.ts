// Admin: users and their roles, cluster API keys, the runtime configuration
// (api-gateway users, cluster-devices-tasks api-keys and config).
import { api, ApiError, cluster, qs } from "../api";
import { button, field, fmtTime, h, replace } from "../dom";
import type { PageContext } from "../main";

const ROLES = ["user", "viewer", "node_operator", "admin", "super_admin"];

export async function renderAdmin(root: HTMLElement, _params: string[], ctx: PageContext) {
  const msg = h("p", { class: "error", role: "alert", id: "admin-error" });
  const info = h("p", { class: "ok", role: "status", id: "admin-info" });
  const say = (e: unknown) => { info.textContent = ""; msg.textContent = e instanceof ApiError ? e.message : String(e); };
  const users = h("tbody", { id: "user-rows" });
  const config = h("pre", { id: "server-config" });

  async function loadUsers() {
    const r = await api("GET", "/api/v1/users" + qs({ page: 1, limit: 100 }));
    const list: any[] = r.users ?? r.data ?? [];
    replace(users, list.map((u) => {
      const role = h("select", { "aria-label": "Role of " + u.email }, ROLES.map((x) => h("option", { value: x, selected: x === u.role }, x)));
      return h("tr", {}, h("td", {}, u.email), h("td", {}, u.username ?? "—"), h("td", {}, role), h("td", {}, fmtTime(u.created_at)),
        h("td", {}, button("Save role", async () => {
          try { await api("PUT", `/api/v1/users/${u.user_id ?? u.id}`, { role: role.value }); info.textContent = `${u.email} is now ${role.value}.`; } catch (e) { say(e); }
        })));
    }));
  }
  const email = h("input", { type: "email", id: "new-user-email", required: true });
  const username = h("input", { id: "new-user-name", required: true, maxlength: 50 });
  const newRole = h("select", { id: "new-user-role" }, ROLES.map((x) => h("option", { value: x, selected: x === "viewer" }, x)));
  const userForm = h("form", { class: "inline", id: "user-form" }, field("Email", email), field("Username", username), field("Role", newRole),
    h("button", { type: "submit" }, "Add user"));
  userForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      // Login is passwordless; the document still requires a password, which is checked and not stored.
      const pw = Array.from(crypto.getRandomValues(new Uint8Array(18)), (b) => b.toString(16).padStart(2, "0")).join("") + "Aa1!";
      await api("POST", "/api/v1/users", { email: email.value.trim(), username: username.value.trim(), password: pw, role: newRole.value });
      info.textContent = `Added ${email.value}; they sign in with a mailed code.`;
      await loadUsers();
    } catch (err) { say(err); }
  });

  const keyName = h("input", { id: "key-name", required: true, maxlength: 100 });
  const keyRole = h("select", { id: "key-role" }, ROLES.map((x) => h("option", { value: x, selected: x === "admin" }, x)));
  const keyOut = h("p", { id: "key-out" });
  const keyForm = h("form", { class: "inline", id: "key-form" }, field("Name", keyName), field("Role", keyRole), h("button", { type: "submit" }, "Create API key"));
  keyForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      const r = await cluster("POST", "/api/v1/cluster/api-keys", { name: keyName.value.trim(), role: keyRole.value });
      replace(keyOut, "Shown once — copy it now: ", h("code", {}, (r.data as any).api_key));
    } catch (err) { say(err); }
  });

  async function loadConfig() {
    const r = await cluster("GET", "/api/v1/config");
    config.textContent = JSON.stringify(r.data, null, 2);
    const d: any = r.data ?? {};
    hbInterval.value = String(d.heartbeat?.interval ?? "");
    hbTimeout.value = String(d.heartbeat?.timeout ?? "");
    hbMissed.value = String(d.heartbeat?.max_missed ?? "");
    maxConn.value = String(d.server?.max_connections ?? "");
  }
  // The settings the cluster API lets an admin change at run time.
  const num = (id: string, min: number, max: number) => h("input", { id, type: "number", min, max, size: 7, required: true });
  const hbInterval = num("hb-interval", 1, 86400), hbTimeout = num("hb-timeout", 1, 86400), hbMissed = num("hb-missed", 1, 1000);
  const maxConn = num("max-connections", 1, 1000000);
  const hbForm = h("form", { class: "inline", id: "heartbeat-form" },
    field("Heartbeat interval (s)", hbInterval), field("Timeout (s)", hbTimeout), field("Max missed", hbMissed),
    h("button", { type: "submit" }, "Save heartbeat"));
  hbForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      await cluster("PUT", "/api/v1/config/heartbeat", { interval: Number(hbInterval.value), timeout: Number(hbTimeout.value), max_missed: Number(hbMissed.value) });
      info.textContent = "Heartbeat settings saved.";
      await loadConfig();
    } catch (err) { say(err); }
  });
  const serverForm = h("form", { class: "inline", id: "server-config-form" }, field("Max connections", maxConn), h("button", { type: "submit" }, "Save server"));
  serverForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      await cluster("PUT", "/api/v1/config/server", { max_connections: Number(maxConn.value) });
      info.textContent = "Server settings saved.";
      await loadConfig();
    } catch (err) { say(err); }
  });

  replace(root, h("h1", {}, "Admin"), msg, info,
    h("section", { class: "panel" }, h("h2", {}, "Users"), userForm,
      h("table", {}, h("thead", {}, h("tr", {}, ["Email", "Username", "Role", "Created", ""].map((c) => h("th", {}, c)))), users)),
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Cluster API keys"), h("p", { class: "hint" }, "Stored as SHA-256; the key is shown once."), keyForm, keyOut),
      h("section", { class: "panel" }, h("h2", {}, "Runtime configuration"), hbForm, serverForm, config)));
  await Promise.all([loadUsers().catch(say), loadConfig().catch(say)]);
  ctx.ready();
}
