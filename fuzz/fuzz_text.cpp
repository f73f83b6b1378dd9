// text() parameter parsing: any text compiles (or raises an athanor::Error); every bind has a
// name, and binding the parameters by name finds each one.
#include <athanor/athanor.hpp>

#include <cstdlib>

namespace sa = athanor;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        auto stmt = sa::text(text);
        auto compiled = stmt.compile(sa::sqlite_dialect());
        sa::Params params;
        for (const auto& b : compiled->binds) {
            if (b.key.empty()) std::abort();
            params.set(b.key, sa::Value(1));
        }
        std::vector<const sa::Value*> bound;
        std::vector<sa::Value> scratch;
        compiled->bind_values(params, bound, scratch);
        if (bound.size() != compiled->binds.size()) std::abort();
    } catch (const sa::Error&) {
    }
    return 0;
}
