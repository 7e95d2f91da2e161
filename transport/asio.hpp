// The one place the project includes Boost.Asio (so configuration macros, if ever needed,
// are set once). Asio is used header-only.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/experimental/parallel_group.hpp>

namespace deltacrdt {
namespace asio = boost::asio;
}  // namespace deltacrdt
