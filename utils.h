/*
 * utils.h: small helpers shared by the runtime files: container_of, branch
 * hints, and an intrusive doubly-linked FIFO queue (used for the ready
 * queue's peers: channel waiters, bundle members, bundle waiters).
 */
#ifndef DILL_UTILS_H_INCLUDED
#define DILL_UTILS_H_INCLUDED

#include <stddef.h>

#define dill_cont(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* Built with AddressSanitizer: coroutine switches are annotated. */
#if defined __SANITIZE_ADDRESS__
#define DILL_ASAN 1
#elif defined __has_feature
#if __has_feature(address_sanitizer)
#define DILL_ASAN 1
#endif
#endif

#define dill_likely(x) __builtin_expect(!!(x), 1)
#define dill_unlikely(x) __builtin_expect(!!(x), 0)

/* On the path of every blocking send, receive and switch. GCC puts these
   functions side by side (.text.hot): after each system call the kernel
   has pushed them out of the caches, and the fewer lines and pages they
   span, the sooner they run again. */
#define DILL_HOT __attribute__((hot))

/* An element of a queue; embed it in the queued object. */
struct dill_qitem {
    struct dill_qitem *prev;
    struct dill_qitem *next;
};

/* A queue: first and last element, NULL when empty. */
struct dill_queue {
    struct dill_qitem *first;
    struct dill_qitem *last;
};

static inline void dill_queue_init(struct dill_queue *q) {
    q->first = NULL;
    q->last = NULL;
}

static inline int dill_queue_empty(const struct dill_queue *q) {
    return q->first == NULL;
}

static inline void dill_queue_push(struct dill_queue *q, struct dill_qitem *it) {
    it->next = NULL;
    it->prev = q->last;
    if(q->last) q->last->next = it;
    else q->first = it;
    q->last = it;
}

static inline void dill_queue_remove(struct dill_queue *q, struct dill_qitem *it) {
    if(it->prev) it->prev->next = it->next;
    else q->first = it->next;
    if(it->next) it->next->prev = it->prev;
    else q->last = it->prev;
    it->prev = NULL;
    it->next = NULL;
}

static inline struct dill_qitem *dill_queue_pop(struct dill_queue *q) {
    struct dill_qitem *it = q->first;
    if(it) dill_queue_remove(q, it);
    return it;
}

#endif
