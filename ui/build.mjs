// Builds the console into dist/: one JavaScript and one CSS bundle with
// content-hashed names (lucid-server lets browsers cache those for a year),
// index.html naming them (no inline script or style: the server's
// Content-Security-Policy forbids both), and the icon. `--outdir DIR` builds
// elsewhere; `--watch` rebuilds on change.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf("--outdir");
const outdir = outIndex >= 0 ? args[outIndex + 1] : join(here, "dist");
const watch = args.includes("--watch");

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

function writeIndex(metafile) {
  let js = null, css = null;
  for (const [file, out] of Object.entries(metafile.outputs)) {
    if (out.entryPoint && file.endsWith(".js")) js = basename(file);
    if (file.endsWith(".css")) css = basename(file);
  }
  if (!js || !css) throw new Error("esbuild produced no app bundle");
  const html = readFileSync(join(here, "src", "index.html"), "utf8")
    .replace("%APP_JS%", js)
    .replace("%APP_CSS%", css);
  writeFileSync(join(outdir, "index.html"), html);
  copyFileSync(join(here, "src", "icon.svg"), join(outdir, "icon.svg"));
}

const options = {
  entryPoints: { app: join(here, "src", "main.ts") },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "esm",
  target: ["es2022"],
  outdir,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
  plugins: [{
    name: "index-html",
    setup(build) {
      build.onEnd((result) => {
        if (result.errors.length === 0) writeIndex(result.metafile);
      });
    },
  }],
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
