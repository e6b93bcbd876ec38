// Sign-in: the gateway's passwordless login (email, then the mailed code or a
// TOTP code) or, for the bootstrap case, an admin token pasted as is
// (`lucidctl admin create-token`). The token goes to sessionStorage only.
import { api, ApiError, setToken } from "../api";
import { field, h, replace } from "../dom";
import { signedIn } from "../main";
import type { PageContext } from "../main";

export function renderSignIn(root: HTMLElement, _params: string[], ctx: PageContext) {
  const next = new URLSearchParams(location.search).get("next") ?? "/ui/fleet";
  const msg = h("p", { class: "error", role: "alert", id: "signin-error" });
  const fail = (e: unknown) => {
    msg.textContent = e instanceof ApiError ? e.message : String(e);
  };

  const tokenInput = h("textarea", { id: "token", rows: 3, autocomplete: "off", spellcheck: "false", required: true });
  const tokenForm = h("form", { id: "token-form" },
    h("h2", {}, "Admin token"),
    h("p", { class: "hint" }, "Paste a token from ", h("code", {}, "lucidctl admin create-token"), " (first start, before any user signs in)."),
    field("Token", tokenInput),
    h("button", { type: "submit", class: "primary" }, "Sign in with token"));
  tokenForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    const t = tokenInput.value.trim();
    setToken(t);
    try {
      await api("GET", "/api/v1/auth/status");
      signedIn(t, null, next);
    } catch (err) {
      setToken(null);
      fail(err);
    }
  });

  const email = h("input", { id: "email", type: "email", autocomplete: "email", required: true });
  const code = h("input", { id: "code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6 });
  const codeRow = h("div", { hidden: true }, field("Code from the mail (or your authenticator)", code));
  // A refused code's message goes once the code is being corrected.
  code.addEventListener("input", () => { msg.textContent = ""; });
  const emailBtn = h("button", { type: "submit", class: "primary" }, "Send me a code");
  let codeSent = false;
  const emailForm = h("form", { id: "email-form" },
    h("h2", {}, "Email"),
    h("p", { class: "hint" }, "We mail a 6-digit code and a sign-in link; users with TOTP may enter their authenticator's code."),
    field("Email", email), codeRow, emailBtn);
  emailForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      if (!codeSent) {
        await api("POST", "/api/v1/auth/login", { email: email.value.trim() }, { auth: false });
        codeSent = true;
        codeRow.hidden = false;
        emailBtn.textContent = "Sign in";
        code.required = true;
        code.focus();
        return;
      }
      const r = await api("POST", "/api/v1/auth/verify", { email: email.value.trim(), code: code.value.trim() }, { auth: false });
      signedIn(r.access_token, r.refresh_token ?? null, next);
    } catch (err) {
      fail(err);
    }
  });

  replace(root,
    h("div", { class: "signin" },
      h("h1", {}, h("img", { src: "/ui/icon.svg", alt: "", width: 28, height: 28 }), " lucidnode console"),
      msg, emailForm, tokenForm));
  ctx.ready();
}
