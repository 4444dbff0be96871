/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * palloc: the SNAT port space of one lcore, and the TIME_WAIT quarantine.
 *
 * Tuples. A flow's backend-side tuple is (proto, SNAT addr, SNAT port,
 * backend addr, backend port); only that whole tuple must be unique, so one
 * SNAT port serves any number of backends at once (RFC 7857 s3). The tuples
 * toward one (proto, backend addr, backend port) from one SNAT address form a
 * "space": a bitmap with one bit per port of this lcore's share, set while
 * the tuple is held, by a live flow or by the quarantine. Spaces are keyed by
 * addresses, not by configuration slots, so two services sharing a backend
 * share its tuples, and a backend or SNAT address removed and added again
 * finds its quarantined tuples still held.
 *
 * Shares. Worker i of n owns the ports p with p % n == i of every range, so a
 * reply's destination port names the lcore that owns the flow and no port is
 * lost to the split. Bit k of a space is port k * n + i.
 *
 * Allocation (RFC 6056 algorithm 5, random increments, per destination):
 * each space keeps a cursor; a new flow starts at cursor + a random step of 1
 * to max(1, range / 32) and takes the first free port from there, wrapping
 * once. A summary word per 64 bitmap words says which words have a free bit,
 * so the search touches at most two summary passes (65536 ports: 16 summary
 * words) and never probes a held tuple: O(1), bounded, whatever the
 * occupancy. The port released last is skipped (one more bounded search)
 * unless it is the only free one, so a freed tuple is never the next one
 * handed out. Consecutive ports toward one destination are not sequential
 * and not predictable.
 *
 * Quarantine. When the backend will hold a tuple in TIME_WAIT (see
 * tcpstate_backend_tw()), palloc_quarantine() starts the tuple's quarantine:
 * an entry with expiry now + duration at the tail of the FIFO of that
 * duration. Every later packet of the flow re-arms it (moves it to the tail),
 * as Linux re-arms TIME_WAIT on every segment it receives in that state. The
 * flow and the entry then both hold the tuple; whichever lets go last clears
 * the bit. Durations are constant per FIFO, so a FIFO's head is always the
 * next to expire: expiry is O(1) per tuple and there is no scan. A duration
 * change applies to new entries; entries keep the expiry they were given.
 *
 * Admission. A quarantine entry can never be refused: a TCP flow is only
 * created while (quarantine-only entries + live TCP flows) < max_quarantine,
 * since every live TCP flow may need one entry. Spaces come from a fixed pool
 * too; empty spaces stay hashed (cheap to find again) and are reused oldest
 * first when the pool runs out.
 *
 * Threads: one struct palloc per worker lcore, written by it alone. The
 * control thread reads spaces for display (palloc_space_at()), tolerating
 * torn counts. No allocation after palloc_init().
 */
#ifndef SLUICE_PALLOC_H
#define SLUICE_PALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include "cfg.h"
#include "flow.h"
#include "tcpstate.h"

#define PALLOC_NONE	      UINT32_MAX
#define PALLOC_FIFOS	      16
#define PALLOC_STEP_DIVISOR   32
#define PALLOC_DEFAULT_SPACES 4096

struct palloc_space {
	/* Key; addresses and port in network byte order. */
	uint32_t bip, sip;
	uint16_t bport;
	uint8_t proto;
	uint8_t hashed;		       /* in the hash (possibly idle) */
	uint32_t cursor;	       /* bit of the last allocation */
	uint32_t last_freed;	       /* bit released last, skipped once while others are free */
	uint32_t live;		       /* tuples held by live flows */
	uint32_t quarantined;	       /* tuples held only by the quarantine */
	uint32_t idle_prev, idle_next; /* on the idle list when live == quarantined == 0 */
	/* Timestamps: the newest TSval' forwarded on an ended flow of this space,
	 * and when (seconds since palloc_init, + 1; 0: none yet). */
	uint32_t ts_hwm, ts_hwm_s;
	/* Detached quarantine entries that may be reused with proof, oldest first. */
	uint32_t proof_head, proof_tail;
};

struct palloc_qent {
	uint32_t prev, next; /* FIFO links */
	uint32_t expire;     /* ms since palloc_init, wrapping; compared signed */
	uint32_t space;
	uint32_t cookie;       /* matches the flow's f->qcookie while the flow holds it */
	uint32_t ts_last;      /* proof: the newest TSval' forwarded on the tuple */
	uint32_t sprev, snext; /* links of the space's proof list */
	uint16_t bit;
	uint8_t fifo;
	uint8_t flow_live : 1; /* the flow holding the tuple too is still live */
	uint8_t proof : 1;     /* on the proof list: reusable by a newer TSval' */
};

/*
 * The timestamp reference clock of one SNAT address on this lcore:
 * R = base + now_ms + adj, 1 kHz, from the address's random base; adj only
 * grows, to keep R newer than every TSval' forwarded on an ended flow.
 */
struct palloc_ref {
	uint32_t gen; /* of the SNAT slot this belongs to */
	uint32_t base;
	uint32_t adj;
};

struct palloc_fifo {
	uint32_t dur_ms;
	uint32_t head, tail;
	uint32_t count;
};

/*
 * What a new flow needs of a snapshot's SNAT pool on this lcore: the slots
 * that take new flows and each one's bits in this lcore's share. Built once
 * per published snapshot (cfg.gen, unique and immutable once published), so
 * that palloc_get() neither walks the CFG_MAX_SNAT slots nor works out their
 * shares for every new flow; a snapshot that was never published (gen 0:
 * tests and benchmarks that edit it in place) is looked at afresh by every
 * call.
 */
struct palloc_pool {
	uint64_t gen;	 /* cfg.gen this describes; 0: nothing yet */
	uint64_t usable; /* bit i: SNAT slot i is used and not draining */
	uint64_t ranged; /* bit i: usable, and its range has ports in this share */
	struct {
		uint16_t blo, bhi; /* bits of the range in this share, where ranged */
	} bits[CFG_MAX_SNAT];
};

struct palloc {
	uint16_t worker;   /* this lcore's share */
	uint16_t nworkers; /* number of shares */
	uint64_t wdiv;	   /* x / nworkers == x * wdiv >> 40 for x < 2^24 (palloc_div) */
	uint64_t rng;
	uint64_t epoch_ms; /* time origin of qent.expire */

	/* Spaces: bitmap geometry, pool, hash, idle list. */
	uint32_t nbits;	   /* ports per share: bits per space */
	uint32_t words;	   /* bitmap words per space */
	uint32_t sumwords; /* summary words per space */
	uint32_t max_spaces;
	uint32_t hmask;
	uint32_t *hash; /* space index + 1; 0 = empty; linear probing */
	struct palloc_space *spaces;
	uint64_t *bits;	      /* max_spaces * words */
	uint64_t *nonfull;    /* max_spaces * sumwords: bit w = word w has a free bit */
	uint32_t spaces_used; /* ever taken from the pool */
	uint32_t idle_head, idle_tail;

	/* Quarantine. */
	struct palloc_qent *q;
	uint32_t max_quarantine;
	uint32_t q_free;     /* free list head */
	uint32_t q_used;     /* entries in FIFOs */
	uint32_t q_detached; /* entries whose flow has ended */
	uint32_t live_tcp;   /* live TCP flows (each may need an entry) */
	uint32_t cookie_next;
	struct palloc_fifo fifo[PALLOC_FIFOS];

	/* Timestamp clocks, per SNAT slot. */
	struct palloc_ref ref[CFG_MAX_SNAT];

	/* The SNAT pool of the last published snapshot seen. */
	struct palloc_pool pool;

	/* Counters (this lcore). */
	uint64_t quarantined_total; /* entries ever started */
	uint64_t rearmed_total;	    /* re-arms by later packets */
	uint64_t expired_total;	    /* entries expired */
	uint64_t spaces_evicted;
	uint64_t reused_total; /* quarantined tuples reused with proof */
	size_t mem_size;       /* bytes allocated by palloc_init() */
	int node;
};

/*
 * Set up the port space of worker @worker of @nworkers: room for @max_spaces
 * (proto, backend, SNAT address) spaces and @max_quarantine quarantine
 * entries, on NUMA node @node (-1: any). @now_ms is the clock origin.
 * Returns 0 or -ENOMEM/-EINVAL.
 */
int palloc_init(struct palloc *pa, uint16_t worker, uint16_t nworkers, uint64_t seed,
		uint32_t max_spaces, uint32_t max_quarantine, int node, uint64_t now_ms);
void palloc_free(struct palloc *pa);

/* Ports of [lo, hi] (host order) in @pa's share. */
uint32_t palloc_share_size(const struct palloc *pa, uint16_t lo, uint16_t hi);

/*
 * Take a free tuple toward (f->proto, f->bip, f->bport) for service @svc of
 * @c, trying its usable SNAT addresses from a random one on. On success fills
 * f->sip, f->sport, f->snat_slot, f->snat_gen, f->space, f->qent = NONE and
 * returns 0. Errors: -ENOENT the service may use no address; -ENOSPC every
 * tuple toward the backend is held on every address tried (*@tried has a bit
 * per SNAT slot tried: the ones to count an alloc failure against); -ENOBUFS
 * the quarantine could not take one more TCP flow; -ENOMEM no space left in
 * the pool.
 */
int palloc_get(struct palloc *pa, const struct cfg *c, const struct cfg_service *svc,
	       struct flow *f, uint64_t *tried);

/*
 * Start or re-arm the quarantine of @f's tuple: it stays held until
 * @now_ms + @dur_ms (and while the flow lives). @dur_ms 0: nothing.
 */
void palloc_quarantine(struct palloc *pa, struct flow *f, uint32_t dur_ms, uint64_t now_ms);

/* Does @f hold a quarantine entry that has not expired yet? */
bool palloc_flow_quarantined(const struct palloc *pa, const struct flow *f);

/*
 * @f ends: it lets go of its tuple, which stays held if the quarantine holds
 * it too, else is free from now on.
 */
void palloc_release(struct palloc *pa, struct flow *f);

/*
 * A flow with timestamps ends at @now_ms: its newest TSval' raises the
 * high-water mark of its space, and the clock of its SNAT address moves past
 * it if need be, so that every later SYN from that address starts newer.
 */
void palloc_ts_end(struct palloc *pa, const struct flow *f, uint64_t now_ms);

/*
 * The two places where a flow's life meets the quarantine; the worker calls
 * exactly these (and so do the tests).
 *
 * After a TCP segment went through tcpstate_next(): once both FINs passed
 * and the backend closed actively, it is in TIME_WAIT, which every segment it
 * gets (re)starts.
 */
static inline void palloc_on_segment(struct palloc *pa, struct flow *f, uint32_t dur_ms,
				     uint64_t now_ms)
{
	if (__builtin_expect((f->tcp_seen & TCPSTATE_TW) != 0, 0))
		palloc_quarantine(pa, f, dur_ms, now_ms);
}

/*
 * When a flow ends for any reason: a backend that sent its FIN as an active
 * closer may hold the tuple although the client's FIN never came (idle-out in
 * a closing state): quarantine from now, erring on the safe side. Then the
 * flow lets go of its tuple.
 */
static inline void palloc_on_end(struct palloc *pa, struct flow *f, uint32_t dur_ms,
				 uint64_t now_ms)
{
	if (f->proto == IPPROTO_TCP && tcpstate_end_may_tw(f->tcp_seen))
		palloc_quarantine(pa, f, dur_ms, now_ms);
	palloc_ts_end(pa, f, now_ms);
	palloc_release(pa, f);
}

/*
 * Timestamps. The client's SYN of @f (tuple taken) carries @tsval. Starts the
 * flow's timestamp tracking; with @rewrite, picks f->ts_off so that the SYN
 * reaches the backend with TSval' = R, the reference clock of f's SNAT
 * address, first moved past the newest TSval' of every ended flow of f's
 * space if need be. Returns the SYN's TSval'.
 */
uint32_t palloc_ts_open(struct palloc *pa, const struct cfg *c, struct flow *f, uint32_t tsval,
			bool rewrite, uint64_t now_ms);

/* The reference clock R of SNAT slot @slot of @c at @now_ms (palloc_ref). */
uint32_t palloc_ts_ref(struct palloc *pa, const struct cfg *c, uint8_t slot, uint64_t now_ms);

/*
 * Reuse with proof, when palloc_get() found no free tuple (-ENOSPC): take a
 * tuple toward f's backend that only the quarantine holds, if the flow that
 * held it carried timestamps both ways (FLOW_TS_SEEN and FLOW_TS_BACKEND:
 * else the backend's TIME_WAIT ignores them) and closed cleanly (both FINs acknowledged, no
 * RST: the backend holds it in TIME_WAIT proper), and the new SYN's TSval'
 * (R of the address if @rewrite, else @tsval) is newer than the last TSval'
 * forwarded on it: Linux then accepts the SYN (RFC 6191,
 * tcp_timewait_state_process()). Fills @f like palloc_get(); returns 0 or
 * -ENOSPC. Looks at most PALLOC_REUSE_LOOK entries per address.
 */
int palloc_reuse(struct palloc *pa, const struct cfg *c, const struct cfg_service *svc,
		 struct flow *f, uint32_t tsval, bool rewrite, uint64_t now_ms);
#define PALLOC_REUSE_LOOK 8
#define PALLOC_PROOF_MAX  (1 << 30) /* a proof is a TSval' newer by less than this */

/* End at most @budget quarantines due at @now_ms; returns how many ended. */
uint32_t palloc_expire(struct palloc *pa, uint64_t now_ms, uint32_t budget);

/* Is the tuple (proto, bip:bport, sip:sport) held (live or quarantined)? */
bool palloc_held(const struct palloc *pa, uint8_t proto, uint32_t bip, uint16_t bport, uint32_t sip,
		 uint16_t sport);

/* Quarantine entries in use (attached to a live flow or not). */
static inline uint32_t palloc_quarantine_used(const struct palloc *pa)
{
	return pa->q_used;
}

/* Space @i (0 <= i < max_spaces) if hashed, else NULL. For display. */
const struct palloc_space *palloc_space_at(const struct palloc *pa, uint32_t i);

/* Held bits of space @i among the ports [lo, hi] (host order) of the share. */
uint32_t palloc_space_held(const struct palloc *pa, uint32_t i, uint16_t lo, uint16_t hi);

/* Bytes of one space (bitmap, summary, header, hash share) and of one entry. */
size_t palloc_space_bytes(const struct palloc *pa);
/* The same for @words bitmap words and @sumwords summary words (one worker: 1024, 16). */
size_t palloc_space_bytes_of(uint32_t words, uint32_t sumwords);
static inline size_t palloc_qent_bytes(void)
{
	return sizeof(struct palloc_qent);
}

static inline uint64_t palloc_rand(struct palloc *pa)
{
	/* xorshift64*: fast, per-lcore, good enough to make ports unpredictable */
	pa->rng ^= pa->rng >> 12;
	pa->rng ^= pa->rng << 25;
	pa->rng ^= pa->rng >> 27;
	return pa->rng * 0x2545f4914f6cdd1dULL;
}

#endif
