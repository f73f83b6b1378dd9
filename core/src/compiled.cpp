#include <athanor/core/compiled.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/core/schema.hpp>

namespace athanor {

void Compiled::bind_values(const Params& params, std::vector<const Value*>& out,
                           std::vector<Value>& scratch) const {
    out.clear();
    scratch.clear();
    scratch.reserve(default_slots);  // pointers into scratch must stay valid
    for (const BindSlot& slot : binds) {
        switch (slot.source) {
            case BindSlot::Source::literal: out.push_back(&slot.value); break;
            case BindSlot::Source::param: {
                const Value* v = params.find(slot.key);
                if (!v)
                    throw MissingParameterError("A value is required for bind parameter '" +
                                                slot.key + "'");
                out.push_back(v);
                break;
            }
            case BindSlot::Source::column_default: {
                if (const Value* v = params.find(slot.key)) {
                    out.push_back(v);
                } else {
                    scratch.push_back(slot.column->default_value());
                    out.push_back(&scratch.back());
                }
                break;
            }
        }
    }
}

}  // namespace athanor
