// Error codes and Result (base/error.hpp), under the path applications of the CRDT library
// have included.
#pragma once

#include "base/error.hpp"
