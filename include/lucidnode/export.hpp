// Symbol visibility of the public API.
//
// liblucidnode is compiled with hidden visibility by default
// (-fvisibility=hidden, lib/CMakeLists.txt) and linked with a version script
// (cmake/lucidnode.map): only what the public headers declare is exported, so
// the library's internals (lucid::detail, its SQLite, JSON and Asio code)
// cannot clash with a host program's own. Every public header wraps its
// declarations in LUCID_PUBLIC_BEGIN / LUCID_PUBLIC_END, after its forward
// declarations of lucid::detail types (those stay hidden).
#pragma once

#if defined(__GNUC__)
#define LUCID_PUBLIC_BEGIN _Pragma("GCC visibility push(default)")
#define LUCID_PUBLIC_END _Pragma("GCC visibility pop")
// For the definitions of a public class's private implementation
// (struct LUCID_HIDDEN Users::Impl { ... }): not part of the API.
#define LUCID_HIDDEN __attribute__((visibility("hidden")))
// For the forward declaration of that Impl inside the public class
// (struct LUCID_HIDDEN_FWD Impl;). Clang refuses a definition whose visibility
// differs from an earlier declaration made under visibility push(default), so
// it must see the attribute there too; GCC must not (it then warns that the
// public class has a field, the unique_ptr<Impl>, of lower visibility).
#if defined(__clang__)
#define LUCID_HIDDEN_FWD LUCID_HIDDEN
#else
#define LUCID_HIDDEN_FWD
#endif
#else
#define LUCID_PUBLIC_BEGIN
#define LUCID_PUBLIC_END
#define LUCID_HIDDEN
#define LUCID_HIDDEN_FWD
#endif
