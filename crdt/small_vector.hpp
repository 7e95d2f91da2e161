// boost::container::small_vector, included in one place: GCC 12 reports a false
// -Wstringop-overread inside small_vector's copy at -O2. The diagnostic is located in the
// Boost header, so silencing it around this single inclusion keeps our own code checked.
// Include this header, never the Boost one directly.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif
#include <boost/container/small_vector.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
