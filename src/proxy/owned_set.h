#pragma once

// OwnedSet<T> owns a set of heap objects whose addresses others hold (a pod's connections, links
// and tunnels): `adopt` takes one in, `destroy` frees it, and nothing else does. Iteration goes
// over a copy of the members (`members`), so acting on one may add or destroy others safely.

#include <memory>
#include <unordered_map>
#include <vector>

#include "zt/assert.h"

namespace zt::proxy {

template <class T>
class OwnedSet {
public:
    // adopt takes ownership of `item` and returns it.
    T& adopt(std::unique_ptr<T> item) {
        T& ref = *item;
        items_.emplace(&ref, std::move(item));
        return ref;
    }

    // destroy frees `item`, which must be a member.
    void destroy(T& item) {
        size_t erased = items_.erase(&item);
        ZT_ASSERT(erased == 1);
        (void)erased;
    }

    // members returns the current members, a copy the caller may act on freely.
    std::vector<T*> members() const {
        std::vector<T*> out;
        out.reserve(items_.size());
        for (const auto& entry : items_) {
            out.push_back(entry.first);
        }
        return out;
    }

    // for_each calls `fn(const T&)` on every member; `fn` must not add or destroy members.
    template <class Fn>
    void for_each(Fn&& fn) const {
        for (const auto& entry : items_) {
            fn(static_cast<const T&>(*entry.first));
        }
    }

    size_t size() const { return items_.size(); }

    bool empty() const { return items_.empty(); }

private:
    std::unordered_map<T*, std::unique_ptr<T>> items_;
};

}  // namespace zt::proxy
