// Convenience header: every CRDT type of the library.
#pragma once

#include "crdt/awlww_map.hpp"
#include "crdt/causal_counter.hpp"
#include "crdt/compact_string.hpp"
#include "crdt/concept.hpp"
#include "crdt/ew_flag.hpp"
#include "crdt/gcounter.hpp"
#include "crdt/hlc.hpp"
#include "crdt/lww_register.hpp"
#include "crdt/mv_register.hpp"
#include "crdt/ormap.hpp"
#include "crdt/orset.hpp"
#include "crdt/pncounter.hpp"
#include "crdt/vector_clock.hpp"
