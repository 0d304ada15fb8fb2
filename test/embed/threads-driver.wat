;; Drives two instances of the threaded core (build/memsys.wasm), registered as "a" and "b", over
;; one shared memory ("env" "memory"), the way two threads of a host would use them: "a" formats
;; the arena (init), "b" attaches to it, and each has its own realm tag. test/embed-threads.test.ts
;; writes a .wast around this module and runs it in wabt's spectest-interp --enable-threads.
;;
;; The interpreter runs one call at a time, so this shows that instances are interchangeable over
;; the shared memory (any instance frees what another took, all state is in the memory, the lock
;; word is taken and released by each instance's own tag), not that calls race correctly.
;;
;; Exports (each returns 0, or the expected error code, or a distinct code for what went wrong):
;;   setup()            init in "a", attach in "b", realm tags 11 and 22, the driver's table
;;   run(seed, ops, sabotage)
;;                      a pseudo-random sequence of alloc/free from both instances; sabotage 0 is
;;                      the real run, 1 and 2 break the driver's own bookkeeping on purpose so
;;                      that a test can see its checks fail (20 and 31)
;;   double_free()      E_NOT_OUT (-5): a buffer freed through "b" and again through "a"
;;   wrong_class()      E_WRONG_CLASS (-4): a free through "b" naming another class
;;   bad_state()        -103: check() through "b" sees a state byte "a"'s buffer should not have
;;   busy()             E_BUSY (-9): the lock held by realm 33, then taken over by recover(33)
;;   empty()            everything given back: no buffer out, no raw span, all pages free
;;
;; The driver keeps its own state in the shared memory too, in a raw span from the core (the ABI's
;; advice for host arrays): it has no memory of its own.

(module
  (import "env" "memory" (memory 128 128 shared))

  (import "a" "init" (func $a_init (param i32 i32 i32) (result i32)))
  (import "a" "set_realm" (func $a_set_realm (param i32) (result i32)))
  (import "a" "alloc" (func $a_alloc (param i32) (result i32)))
  (import "a" "free" (func $a_free (param i32 i32) (result i32)))
  (import "a" "alloc_batch" (func $a_alloc_batch (param i32 i32 i32) (result i32)))
  (import "a" "free_batch" (func $a_free_batch (param i32 i32 i32) (result i32)))
  (import "a" "check" (func $a_check (result i32)))
  (import "a" "class_stat" (func $a_class_stat (param i32 i32) (result f64)))
  (import "a" "arena_stat" (func $a_arena_stat (param i32) (result f64)))
  (import "a" "raw_alloc" (func $a_raw_alloc (param i32) (result i32)))
  (import "a" "release" (func $a_release (result i32)))
  (import "a" "recover" (func $a_recover (param i32) (result i32)))

  (import "b" "init" (func $b_init (param i32 i32 i32) (result i32)))
  (import "b" "attach" (func $b_attach (result i32)))
  (import "b" "set_realm" (func $b_set_realm (param i32) (result i32)))
  (import "b" "alloc" (func $b_alloc (param i32) (result i32)))
  (import "b" "free" (func $b_free (param i32 i32) (result i32)))
  (import "b" "alloc_batch" (func $b_alloc_batch (param i32 i32 i32) (result i32)))
  (import "b" "check" (func $b_check (result i32)))
  (import "b" "class_stat" (func $b_class_stat (param i32 i32) (result f64)))
  (import "b" "arena_stat" (func $b_arena_stat (param i32) (result f64)))
  (import "b" "raw_free" (func $b_raw_free (param i32) (result i32)))
  (import "b" "reclaim" (func $b_reclaim (param i32) (result i32)))
  (import "b" "recover" (func $b_recover (param i32) (result i32)))
  (import "b" "validate" (func $b_validate (param i32 i32) (result i32)))

  ;; The realm tags: every instance gets its own, so the lock word and the owner table say which
  ;; instance took the lock or a slot.
  (global $REALM_A i32 (i32.const 11))
  (global $REALM_B i32 (i32.const 22))

  ;; The driver's table, a raw span of 2 pages: SLOTS entries of 16 bytes (+0 offset, 0 = empty;
  ;; +4 class; +8 tag; +12 instance that took it) from +0, the per-class counters at +4096
  ;; (+0 held by the driver now, +4 taken ever), a batch array of 64 u32 at +4608.
  (global $tbl (mut i32) (i32.const 0))
  (global $SLOTS i32 (i32.const 256))
  (global $COUNTERS i32 (i32.const 4096))
  (global $BATCH i32 (i32.const 4608))
  (global $TABLE_PAGES i32 (i32.const 2))

  ;; Classes drawn: 0..39, i.e. all 32 small classes (128 B .. 4 KiB, slots in 64 KiB runs) and the
  ;; page classes 32..39 (4 .. 32 KiB, one buffer per run). 128 wasm pages (8 MiB) hold the at most
  ;; 256 buffers held at once with room to spare, so alloc never runs out.
  (global $CLASSES i32 (i32.const 40))

  ;; Header fields used directly (docs/abi.md, "Memory layout").
  (global $H_LOCK i32 (i32.const 16))
  (global $H_STATE i32 (i32.const 208))
  (global $H_OWNERS i32 (i32.const 224))

  ;; xorshift32: the whole sequence follows from the seed.
  (global $x (mut i32) (i32.const 1))
  (func $rand (result i32)
    (global.set $x (i32.xor (global.get $x) (i32.shl (global.get $x) (i32.const 13))))
    (global.set $x (i32.xor (global.get $x) (i32.shr_u (global.get $x) (i32.const 17))))
    (global.set $x (i32.xor (global.get $x) (i32.shl (global.get $x) (i32.const 5))))
    (global.get $x))

  ;; One instance or the other: who = 0 is "a", 1 is "b".
  (func $alloc (param $who i32) (param $c i32) (result i32)
    (if (result i32) (local.get $who)
      (then (call $b_alloc (local.get $c)))
      (else (call $a_alloc (local.get $c)))))
  (func $free (param $who i32) (param $off i32) (param $c i32) (result i32)
    (if (result i32) (local.get $who)
      (then (call $b_free (local.get $off) (local.get $c)))
      (else (call $a_free (local.get $off) (local.get $c)))))
  (func $check (param $who i32) (result i32)
    (if (result i32) (local.get $who) (then (call $b_check)) (else (call $a_check))))
  (func $class_stat (param $who i32) (param $c i32) (param $field i32) (result i32)
    (i32.trunc_f64_s
      (if (result f64) (local.get $who)
        (then (call $b_class_stat (local.get $c) (local.get $field)))
        (else (call $a_class_stat (local.get $c) (local.get $field))))))
  (func $arena_stat (param $who i32) (param $field i32) (result i32)
    (i32.trunc_f64_s
      (if (result f64) (local.get $who)
        (then (call $b_arena_stat (local.get $field)))
        (else (call $a_arena_stat (local.get $field))))))
  (func $realm (param $who i32) (result i32)
    (select (global.get $REALM_B) (global.get $REALM_A) (local.get $who)))

  (func $size (param $c i32) (result i32) (call $class_stat (i32.const 0) (local.get $c) (i32.const 0)))
  (func $entry (param $slot i32) (result i32)
    (i32.add (global.get $tbl) (i32.shl (local.get $slot) (i32.const 4))))
  (func $held_at (param $c i32) (result i32)
    (i32.add (i32.add (global.get $tbl) (global.get $COUNTERS)) (i32.shl (local.get $c) (i32.const 3))))
  (func $state_byte (param $off i32) (result i32)
    (i32.add (i32.load (global.get $H_STATE)) (i32.shr_u (local.get $off) (i32.const 7))))
  (func $owner_of (param $off i32) (result i32)
    (i32.load16_u
      (i32.add (i32.load (global.get $H_OWNERS)) (i32.shl (i32.shr_u (local.get $off) (i32.const 7)) (i32.const 1)))))

  ;; A buffer's tag: the first word holds it and the last word its complement, so a buffer handed
  ;; out twice, or overlapping a neighbour, is seen when the driver checks the tag before freeing.
  (func $stamp (param $off i32) (param $c i32) (param $tag i32)
    (i32.store (local.get $off) (local.get $tag))
    (i32.store (i32.sub (i32.add (local.get $off) (call $size (local.get $c))) (i32.const 4))
      (i32.xor (local.get $tag) (i32.const -1))))
  (func $stamped (param $off i32) (param $c i32) (param $tag i32) (result i32)
    (i32.and
      (i32.eq (i32.load (local.get $off)) (local.get $tag))
      (i32.eq (i32.load (i32.sub (i32.add (local.get $off) (call $size (local.get $c))) (i32.const 4)))
        (i32.xor (local.get $tag) (i32.const -1)))))

  ;; init in "a" only (a second init must refuse a formatted header: E_FORMAT -6), attach in "b".
  (func (export "setup") (result i32)
    (if (call $a_init (i32.const 0) (i32.const 1) (i32.const 1)) (then (return (i32.const 1))))
    (if (i32.ne (call $b_init (i32.const 0) (i32.const 1) (i32.const 1)) (i32.const -6)) (then (return (i32.const 2))))
    (if (call $b_attach) (then (return (i32.const 3))))
    (if (call $a_set_realm (global.get $REALM_A)) (then (return (i32.const 4))))
    (if (call $b_set_realm (global.get $REALM_B)) (then (return (i32.const 5))))
    (global.set $tbl (call $a_raw_alloc (global.get $TABLE_PAGES)))
    (if (i32.eqz (global.get $tbl)) (then (return (i32.const 6))))
    ;; A raw span is not zeroed (its pages are assumed zero in a fresh memory); clear the table.
    (memory.fill (global.get $tbl) (i32.const 0) (i32.shl (global.get $TABLE_PAGES) (i32.const 12)))
    (i32.const 0))

  ;; `ops` operations. Each draws an instance, a table slot and a class: an empty slot is filled
  ;; by alloc, a full one is freed, by whichever instance was drawn, so about half the frees go
  ;; through the instance that did not take the buffer. After every operation the other instance
  ;; must see the lock free and the class's out count equal to what the driver holds; every 1024
  ;; operations check() walks all the tables. At the end the driver frees all it holds.
  (func (export "run") (param $seed i32) (param $ops i32) (param $sabotage i32) (result i32)
    (local $i i32) (local $r i32) (local $who i32) (local $e i32) (local $off i32) (local $c i32)
    (local $tag i32) (local $h i32) (local $cross i32) (local $frees i32) (local $slot i32)
    (global.set $x (select (local.get $seed) (i32.const 1) (local.get $seed)))
    (block $done
      (loop $op
        (br_if $done (i32.ge_u (local.get $i) (local.get $ops)))
        (local.set $r (call $rand))
        (local.set $who (i32.and (local.get $r) (i32.const 1)))
        (local.set $e (call $entry (i32.and (i32.shr_u (local.get $r) (i32.const 1)) (i32.sub (global.get $SLOTS) (i32.const 1)))))
        (local.set $off (i32.load (local.get $e)))
        (if (i32.eqz (local.get $off))
          (then
            (local.set $c (i32.rem_u (i32.shr_u (local.get $r) (i32.const 9)) (global.get $CLASSES)))
            (local.set $off (call $alloc (local.get $who) (local.get $c)))
            ;; The arena is sized never to fill: 0 is a failure (or E_BUSY with nobody inside).
            (if (i32.eqz (local.get $off)) (then (return (i32.const 10))))
            ;; Slots are 128-byte aligned, page classes 4 KiB aligned.
            (if (i32.and (local.get $off) (select (i32.const 4095) (i32.const 127) (i32.ge_u (local.get $c) (i32.const 32))))
              (then (return (i32.const 11))))
            ;; The owner table names the instance that took it, by its own realm tag.
            (if (i32.ne (call $owner_of (local.get $off)) (call $realm (local.get $who))) (then (return (i32.const 12))))
            ;; Its state byte is class << 2 | OUT (2).
            (if (i32.ne (i32.load8_u (call $state_byte (local.get $off)))
                        (i32.or (i32.shl (local.get $c) (i32.const 2)) (i32.const 2)))
              (then (return (i32.const 13))))
            (local.set $tag (i32.or (i32.xor (local.get $r) (i32.shl (local.get $i) (i32.const 16))) (i32.const 1)))
            (call $stamp (local.get $off) (local.get $c) (local.get $tag))
            (i32.store (local.get $e) (local.get $off))
            (i32.store offset=4 (local.get $e) (local.get $c))
            (i32.store offset=8 (local.get $e) (local.get $tag))
            (i32.store offset=12 (local.get $e) (local.get $who))
            (local.set $h (call $held_at (local.get $c)))
            (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
            (i32.store offset=4 (local.get $h) (i32.add (i32.load offset=4 (local.get $h)) (i32.const 1))))
          (else
            (local.set $c (i32.load offset=4 (local.get $e)))
            (local.set $tag (i32.load offset=8 (local.get $e)))
            ;; Sabotage 1: the driver clobbers the tag of the buffer it is about to free.
            (if (i32.and (i32.eq (local.get $sabotage) (i32.const 1)) (i32.ge_u (local.get $i) (i32.shr_u (local.get $ops) (i32.const 1))))
              (then (i32.store (local.get $off) (i32.xor (local.get $tag) (i32.const 0x100)))))
            (if (i32.eqz (call $stamped (local.get $off) (local.get $c) (local.get $tag))) (then (return (i32.const 20))))
            ;; Sabotage 2: the driver forgets the buffer without freeing it.
            (if (i32.eqz (i32.and (i32.eq (local.get $sabotage) (i32.const 2)) (i32.ge_u (local.get $i) (i32.shr_u (local.get $ops) (i32.const 1)))))
              (then
                (if (call $free (local.get $who) (local.get $off) (local.get $c)) (then (return (i32.const 21))))))
            (if (i32.ne (local.get $who) (i32.load offset=12 (local.get $e)))
              (then (local.set $cross (i32.add (local.get $cross) (i32.const 1)))))
            (local.set $frees (i32.add (local.get $frees) (i32.const 1)))
            (i32.store (local.get $e) (i32.const 0))
            (local.set $h (call $held_at (local.get $c)))
            (i32.store (local.get $h) (i32.sub (i32.load (local.get $h)) (i32.const 1)))))
        ;; Seen from the other instance: the lock is free again and the class balances.
        (if (call $arena_stat (i32.xor (local.get $who) (i32.const 1)) (i32.const 9)) (then (return (i32.const 30))))
        (if (i32.ne (call $class_stat (i32.xor (local.get $who) (i32.const 1)) (local.get $c) (i32.const 5))
                    (i32.load (call $held_at (local.get $c))))
          (then (return (i32.const 31))))
        (if (i32.eqz (i32.and (local.get $i) (i32.const 1023)))
          (then (if (call $check (local.get $who)) (then (return (i32.const 32))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $op)))

    ;; Every class, through both instances: out = held by the driver, taken = its allocs.
    (local.set $c (i32.const 0))
    (loop $cls
      (local.set $h (call $held_at (local.get $c)))
      (if (i32.ne (call $class_stat (i32.const 0) (local.get $c) (i32.const 5)) (i32.load (local.get $h))) (then (return (i32.const 40))))
      (if (i32.ne (call $class_stat (i32.const 1) (local.get $c) (i32.const 5)) (i32.load (local.get $h))) (then (return (i32.const 41))))
      (if (i32.ne (call $class_stat (i32.const 1) (local.get $c) (i32.const 6)) (i32.load offset=4 (local.get $h))) (then (return (i32.const 42))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br_if $cls (i32.lt_u (local.get $c) (i32.const 64))))
    (if (call $a_check) (then (return (i32.const 43))))
    (if (call $b_check) (then (return (i32.const 44))))
    ;; About half the frees crossed instances (the draw is fair; a quarter is a safe floor).
    (if (i32.lt_u (i32.shl (local.get $cross) (i32.const 2)) (local.get $frees)) (then (return (i32.const 45))))

    ;; Free what is still held, alternating the instances, checking each tag.
    (local.set $slot (i32.const 0))
    (loop $rest
      (local.set $e (call $entry (local.get $slot)))
      (local.set $off (i32.load (local.get $e)))
      (if (local.get $off)
        (then
          (local.set $c (i32.load offset=4 (local.get $e)))
          (if (i32.eqz (call $stamped (local.get $off) (local.get $c) (i32.load offset=8 (local.get $e)))) (then (return (i32.const 46))))
          (if (call $free (i32.and (local.get $slot) (i32.const 1)) (local.get $off) (local.get $c)) (then (return (i32.const 47))))
          (i32.store (local.get $e) (i32.const 0))
          (local.set $h (call $held_at (local.get $c)))
          (i32.store (local.get $h) (i32.sub (i32.load (local.get $h)) (i32.const 1)))))
      (local.set $slot (i32.add (local.get $slot) (i32.const 1)))
      (br_if $rest (i32.lt_u (local.get $slot) (global.get $SLOTS))))

    ;; Nothing out in any class, seen from both.
    (local.set $c (i32.const 0))
    (loop $cls
      (if (call $class_stat (i32.const 0) (local.get $c) (i32.const 5)) (then (return (i32.const 48))))
      (if (call $class_stat (i32.const 1) (local.get $c) (i32.const 5)) (then (return (i32.const 49))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br_if $cls (i32.lt_u (local.get $c) (i32.const 64))))

    ;; A batch across instances: 64 buffers of class 3 taken by "b", stamped, freed by "a".
    (local.set $e (i32.add (global.get $tbl) (global.get $BATCH)))
    (if (i32.ne (call $b_alloc_batch (i32.const 3) (local.get $e) (i32.const 64)) (i32.const 64)) (then (return (i32.const 50))))
    (local.set $i (i32.const 0))
    (loop $stamp
      (call $stamp (i32.load (i32.add (local.get $e) (i32.shl (local.get $i) (i32.const 2)))) (i32.const 3) (i32.add (local.get $i) (i32.const 7000)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $stamp (i32.lt_u (local.get $i) (i32.const 64))))
    (if (f64.ne (call $a_class_stat (i32.const 3) (i32.const 5)) (f64.const 64)) (then (return (i32.const 51))))
    (local.set $i (i32.const 0))
    (loop $check
      (if (i32.eqz (call $stamped (i32.load (i32.add (local.get $e) (i32.shl (local.get $i) (i32.const 2)))) (i32.const 3) (i32.add (local.get $i) (i32.const 7000))))
        (then (return (i32.const 52))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $check (i32.lt_u (local.get $i) (i32.const 64))))
    (if (i32.ne (call $a_free_batch (i32.const 3) (local.get $e) (i32.const 64)) (i32.const 64)) (then (return (i32.const 53))))
    (if (f64.ne (call $b_class_stat (i32.const 3) (i32.const 5)) (f64.const 0)) (then (return (i32.const 54))))

    ;; A realm that dies with buffers: "a" takes 5 of class 7, "b" reclaims them by a's tag.
    (local.set $i (i32.const 0))
    (loop $take
      (if (i32.eqz (call $a_alloc (i32.const 7))) (then (return (i32.const 55))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $take (i32.lt_u (local.get $i) (i32.const 5))))
    (if (i32.ne (call $b_reclaim (global.get $REALM_A)) (i32.const 5)) (then (return (i32.const 56))))
    (if (f64.ne (call $a_class_stat (i32.const 7) (i32.const 5)) (f64.const 0)) (then (return (i32.const 57))))

    (if (call $a_check) (then (return (i32.const 58))))
    (if (call $b_check) (then (return (i32.const 59))))
    (i32.const 0))

  ;; A double free through the other instance is refused: E_NOT_OUT.
  (func (export "double_free") (result i32)
    (local $off i32)
    (local.set $off (call $a_alloc (i32.const 5)))
    (if (i32.eqz (local.get $off)) (then (return (i32.const 1))))
    (if (call $b_free (local.get $off) (i32.const 5)) (then (return (i32.const 2))))
    (call $a_free (local.get $off) (i32.const 5)))

  ;; A free naming the wrong class is refused and changes nothing; the right one then works.
  (func (export "wrong_class") (result i32)
    (local $off i32) (local $r i32)
    (local.set $off (call $a_alloc (i32.const 6)))
    (if (i32.eqz (local.get $off)) (then (return (i32.const 1))))
    (local.set $r (call $b_free (local.get $off) (i32.const 5)))
    (if (call $b_free (local.get $off) (i32.const 6)) (then (return (i32.const 2))))
    (local.get $r))

  ;; check() is not vacuous: a state byte set to FREE by hand (hosts must never write FREE) on a
  ;; buffer "a" holds is seen by "b"'s check (-103, a slot's state or free bit is wrong). The byte
  ;; is put back, after which both checks pass and the buffer frees normally.
  (func (export "bad_state") (result i32)
    (local $off i32) (local $r i32)
    (local.set $off (call $a_alloc (i32.const 9)))
    (if (i32.eqz (local.get $off)) (then (return (i32.const 1))))
    (i32.store8 (call $state_byte (local.get $off)) (i32.or (i32.shl (i32.const 9) (i32.const 2)) (i32.const 1)))
    (local.set $r (call $b_check))
    (i32.store8 (call $state_byte (local.get $off)) (i32.or (i32.shl (i32.const 9) (i32.const 2)) (i32.const 2)))
    (if (call $b_check) (then (return (i32.const 2))))
    (if (call $a_check) (then (return (i32.const 3))))
    (if (call $b_free (local.get $off) (i32.const 9)) (then (return (i32.const 4))))
    (local.get $r))

  ;; The lock: the driver takes it as realm 33 (as if a thread of that realm were inside a call).
  ;; A free through "b" spins ~2^24 times, returns E_BUSY and changes nothing; recover(22) through
  ;; "a" is E_NOT_HELD (22 does not hold it); recover(33) through "b" takes it over, finds the
  ;; arena consistent (0) and releases it, and the free then goes through.
  (func (export "busy") (result i32)
    (local $off i32) (local $r i32)
    (local.set $off (call $a_alloc (i32.const 4)))
    (if (i32.eqz (local.get $off)) (then (return (i32.const 1))))
    (if (i32.atomic.rmw.cmpxchg (global.get $H_LOCK) (i32.const 0) (i32.const 33)) (then (return (i32.const 2))))
    (local.set $r (call $b_free (local.get $off) (i32.const 4)))
    (if (i32.ne (i32.atomic.load (global.get $H_LOCK)) (i32.const 33)) (then (return (i32.const 3))))
    (if (i32.ne (call $b_validate (local.get $off) (i32.const 4)) (i32.const 2)) (then (return (i32.const 4))))
    (if (i32.ne (call $a_recover (global.get $REALM_B)) (i32.const -10)) (then (return (i32.const 5))))
    (if (call $b_recover (i32.const 33)) (then (return (i32.const 6))))
    (if (i32.atomic.load (global.get $H_LOCK)) (then (return (i32.const 7))))
    (if (call $b_free (local.get $off) (i32.const 4)) (then (return (i32.const 8))))
    (local.get $r))

  ;; All given back: no buffer out in any class, the driver's table freed through "b" (it came
  ;; from "a"), "a"'s release() returns the empty runs, and every data page is free.
  (func (export "empty") (result i32)
    (local $c i32)
    (loop $cls
      (if (call $class_stat (i32.const 0) (local.get $c) (i32.const 5)) (then (return (i32.const 1))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br_if $cls (i32.lt_u (local.get $c) (i32.const 64))))
    (if (call $b_raw_free (global.get $tbl)) (then (return (i32.const 2))))
    (if (i32.le_s (call $a_release) (i32.const 0)) (then (return (i32.const 3))))
    (if (call $arena_stat (i32.const 1) (i32.const 4)) (then (return (i32.const 4))))
    ;; free pages = pages - first data page
    (if (i32.ne (call $arena_stat (i32.const 1) (i32.const 3))
                (i32.sub (call $arena_stat (i32.const 1) (i32.const 1)) (call $arena_stat (i32.const 1) (i32.const 2))))
      (then (return (i32.const 5))))
    (if (call $a_check) (then (return (i32.const 6))))
    (if (call $b_check) (then (return (i32.const 7))))
    (if (i32.atomic.load (global.get $H_LOCK)) (then (return (i32.const 8))))
    (i32.const 0))
)
