// lucidnode: the whole public API.
#pragma once

#include "lucidnode/auth.hpp"
#include "lucidnode/clock.hpp"
#include "lucidnode/cluster.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/events.hpp"
#include "lucidnode/nodes.hpp"
#include "lucidnode/version.hpp"
