// Internal: equality of two byte strings, in line for the short ones.
//
// Dirty checks compare each text member of each object with its snapshot at every flush, and
// most such strings are short (names, codes). std::string_view's == calls memcmp through the
// PLT for any length; here a string of up to 32 bytes is compared with two overlapping loads
// of 4, 8 or 16 bytes from each side (no call, no loop), a longer one by memcmp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace athanor::detail {

[[gnu::always_inline]] inline bool bytes_equal(std::string_view a, std::string_view b) noexcept {
    const std::size_t n = a.size();
    if (n != b.size()) return false;
    const char* x = a.data();
    const char* y = b.data();
    auto differ = [](const char* p, const char* q, auto width) {
        decltype(width) u, v;
        std::memcpy(&u, p, sizeof u);
        std::memcpy(&v, q, sizeof v);
        return u ^ v;
    };
    if (n >= 8) {
        if (n <= 16) return (differ(x, y, std::uint64_t{}) | differ(x + n - 8, y + n - 8, std::uint64_t{})) == 0;
        if (n <= 32)
            return std::memcmp(x, y, 16) == 0 && std::memcmp(x + n - 16, y + n - 16, 16) == 0;  // fixed sizes: in line
        return std::memcmp(x, y, n) == 0;
    }
    if (n >= 4) return (differ(x, y, std::uint32_t{}) | differ(x + n - 4, y + n - 4, std::uint32_t{})) == 0;
    for (std::size_t i = 0; i < n; ++i)
        if (x[i] != y[i]) return false;
    return true;
}

}  // namespace athanor::detail
