// The web console (issue 16): the static files of ui/ under /ui/, `/` and
// /dashboard redirecting there. The console is a thin shell over the
// documented API: these routes serve files only, and every answer (errors
// included) carries the same strict security headers. Files come from the
// in-memory set ServerEnv::console (console_assets.hpp) loaded at start-up;
// a request path never reaches the file system.
#include <string>

#include "console_assets.hpp"
#include "router.hpp"
#include "routes/routes.hpp"
#include "server_env.hpp"

namespace lucid::server {

namespace {

// Same-origin everything, no inline script or style (the console's CSS and
// JavaScript are files), no framing, no referrer leaking a URL. 'self' in
// connect-src covers the same origin's ws:/wss: (the WebSocket events).
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

void add_security_headers(http::Response& r) {
  r.headers.emplace_back("Content-Security-Policy", kContentSecurityPolicy);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
  r.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

http::Reply plain(int status, std::string text) {
  http::Reply r;
  r.response.status = status;
  r.response.content_type = "text/plain; charset=utf-8";
  r.response.body = std::move(text);
  r.response.headers.emplace_back("Cache-Control", "no-store");
  add_security_headers(r.response);
  return r;
}

http::Reply redirect(int status, const char* to) {
  http::Reply r = plain(status, std::string("See ") + to + "\n");
  r.response.headers.emplace_back("Location", to);
  return r;
}

// What /ui/ answers when lucid-server has no console files: a page that says
// so and how to build them (404: there is nothing to serve), never a 500.
http::Reply not_built(const ServerEnv& env) {
  std::string page =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lucid-server: console not built</title>"
      "</head><body><h1>The web console was not built</h1>\n<p>This lucid-server has no console files";
  page += env.console && !env.console->dir().empty() ? " in <code>" + env.console->dir() + "</code>" : std::string();
  page +=
      ". Build them with Node.js and npm (<code>scripts/setup</code> installs them, then <code>cd ui &amp;&amp; npm "
      "ci &amp;&amp; npm run build</code>, or <code>cmake --build build --target lucid-ui</code>) and start the "
      "server with <code>--ui-dir ui/dist</code>, or install a package that contains them "
      "(<code>share/lucidnode/ui</code>).</p>\n<p>The API itself works: see the README.</p></body></html>\n";
  http::Reply r;
  r.response.status = 404;
  r.response.content_type = "text/html; charset=utf-8";
  r.response.body = std::move(page);
  r.response.headers.emplace_back("Cache-Control", "no-store");
  add_security_headers(r.response);
  return r;
}

http::Reply serve(Context& ctx, const ConsoleAsset& a, const char* cache_control) {
  http::Reply r;
  r.response.headers.emplace_back("ETag", a.etag);
  r.response.headers.emplace_back("Cache-Control", cache_control);
  add_security_headers(r.response);
  const std::string* inm = ctx.req.header("if-none-match");
  if (inm && *inm == a.etag) {
    r.response.status = 304;
    r.response.content_type.clear();
    return r;
  }
  r.response.status = 200;
  r.response.content_type = a.content_type;
  r.response.body = a.body;
  return r;
}

// index.html, for /ui/ and the console's own routes (/ui/fleet,
// /ui/nodes/node_…): the page reads its route from location.pathname.
http::Reply index_page(Context& ctx) {
  const ConsoleAsset* index = ctx.env.console ? ctx.env.console->find("index.html") : nullptr;
  if (!index) return not_built(ctx.env);
  return serve(ctx, *index, "no-cache");
}

http::Reply root_redirect(Context&) { return redirect(302, "/ui/"); }
http::Reply slash_redirect(Context&) { return redirect(308, "/ui/"); }

http::Reply console_root(Context& ctx) { return index_page(ctx); }

// /ui/{name}: a console file, or (a name without a dot, which no file has)
// one of the console's page routes.
http::Reply console_file(Context& ctx) {
  const std::string& name = ctx.params[0];
  if (!ConsoleAssets::valid_name(name)) return plain(404, "Not Found\n");
  if (ctx.env.console)
    if (const ConsoleAsset* a = ctx.env.console->find(name))
      return serve(ctx, *a, a->immutable ? "public, max-age=31536000, immutable" : "no-cache");
  if (name.find('.') == std::string::npos) return index_page(ctx);
  return plain(404, "Not Found\n");
}

// /ui/{page}/{id}: a console page about one object (/ui/nodes/node_…).
// Console files are never in subdirectories, so a name with a dot here
// (/ui/assets/app.js) is a missing file, not a page.
http::Reply console_object(Context& ctx) {
  for (const auto& p : ctx.params)
    if (!ConsoleAssets::valid_name(p) || p.find('.') != std::string::npos) return plain(404, "Not Found\n");
  return index_page(ctx);
}

// Errors of this surface (no route, wrong method, a refused request) as
// plain text with the same security headers.
http::Response console_error(const Failure& f) {
  int status = 500;
  switch (f.kind) {
    case FailureKind::route_not_found: status = 404; break;
    case FailureKind::method_not_allowed: status = 405; break;
    case FailureKind::server_protocol: status = f.status; break;
    case FailureKind::rate_limited: status = 429; break;
    case FailureKind::malformed_json: status = 400; break;
    case FailureKind::error: status = f.error && f.error->code() == Errc::not_found ? 404 : 400; break;
    case FailureKind::internal: status = 500; break;
  }
  http::Reply r = plain(status, f.message + "\n");
  return std::move(r.response);
}

// Public and unlimited like /health: static bytes from memory, nothing a
// caller can make expensive.
const Route kRoutes[] = {
    {"GET", "/", root_redirect, AuthMode::none, Role::user, nullptr, RateCategory::none},
    {"GET", "/dashboard", root_redirect, AuthMode::none, Role::user, nullptr, RateCategory::none},
    {"GET", "/ui", slash_redirect, AuthMode::none, Role::user, nullptr, RateCategory::none},
    {"GET", "/ui/", console_root, AuthMode::none, Role::user, nullptr, RateCategory::none},
    {"GET", "/ui/{file}", console_file, AuthMode::none, Role::user, nullptr, RateCategory::none},
    {"GET", "/ui/{page}/{id}", console_object, AuthMode::none, Role::user, nullptr, RateCategory::none},
};

}  // namespace

// Unmatched paths under /ui/ get this surface's errors; `/`, /dashboard and
// /ui are single routes whose wrong methods their own encoder answers.
void add_console_routes(Router& router) {
  router.add_surface("/ui/", console_error, kRoutes, std::size(kRoutes));
}

}  // namespace lucid::server
