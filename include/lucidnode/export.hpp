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
#else
#define LUCID_PUBLIC_BEGIN
#define LUCID_PUBLIC_END
#define LUCID_HIDDEN
#endif
