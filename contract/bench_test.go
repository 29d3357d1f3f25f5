package contract

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/cloudflare/circl/sign/ed448"
)

// BenchmarkInstall runs Get15118EVCertificate's work in process: every
// request a new vehicle signature (no idempotent answers), on as many
// goroutines as CPUs, with the durable SQLite store. It reports the mean
// of each stage; BenchmarkPublicKeyOps gives the public-key operations
// they contain.
func BenchmarkInstall(b *testing.B) {
	e := newInstallEnv(b)
	e.in.Window = time.Nanosecond // every request is new: no cached answers
	reqs := installRequests(b, e, 256)
	var mu sync.Mutex
	var sum Timings
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var local Timings
		for pb.Next() {
			res, err := e.in.Handle(context.Background(), ActionInstall, reqs[next.Add(1)%int64(len(reqs))], 5600)
			if err != nil {
				b.Error(err)
				return
			}
			local.Add(res.Timings)
		}
		mu.Lock()
		sum.Add(local)
		mu.Unlock()
	})
	reportStages(b, sum)
}

// installRequests are n installation requests of e's vehicle, each with a
// signature of its own.
func installRequests(b *testing.B, e *installEnv, n int) [][]byte {
	reqs := make([][]byte, n)
	for i := range reqs {
		r, err := e.ev.InstallationRequest()
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = r
	}
	return reqs
}

// reportStages reports the mean of each stage of sum over b.N.
func reportStages(b *testing.B, sum Timings) {
	for _, s := range sum.Stages() {
		b.ReportMetric(float64(s.D.Nanoseconds())/1000/float64(b.N), s.Name+"-us")
	}
}

// BenchmarkPublicKeyOps measures the public-key operations of an
// installation: the verify stage holds two ECDSA verifications (the
// request's signature and the provisioning certificate's; its sub-CA chain
// is verified once and remembered), keygen one key generation, issue and
// sign one ECDSA signature each, and encrypt a key generation and an ECDH
// (the ecdh case).
func BenchmarkPublicKeyOps(b *testing.B) {
	publicKeyOps(b, elliptic.P256(), ecdh.P256(), crypto.SHA256)
}

// publicKeyOps measures ECDSA verify, sign and key generation on curve
// over hash, and an ECDH with a new key on the same curve.
func publicKeyOps(b *testing.B, curve elliptic.Curve, dh ecdh.Curve, hash crypto.Hash) {
	k, _ := ecdsa.GenerateKey(curve, rand.Reader)
	h := hash.New()
	h.Write([]byte("x"))
	d := h.Sum(nil)
	sig, _ := ecdsa.SignASN1(rand.Reader, k, d)
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			ecdsa.VerifyASN1(&k.PublicKey, d, sig)
		}
	})
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			ecdsa.SignASN1(rand.Reader, k, d)
		}
	})
	b.Run("keygen", func(b *testing.B) {
		for b.Loop() {
			ecdsa.GenerateKey(curve, rand.Reader)
		}
	})
	peer, _ := dh.GenerateKey(rand.Reader)
	b.Run("ecdh", func(b *testing.B) {
		for b.Loop() {
			eph, _ := dh.GenerateKey(rand.Reader)
			eph.ECDH(peer.PublicKey())
		}
	})
}

// BenchmarkInstall20 runs ISO 15118-20 installations of each variant in
// process: every request a new V2G session of the vehicle (a new
// signature, its first contract), on as many goroutines as CPUs, with the
// durable SQLite store. BenchmarkPublicKeyOps20 and
// BenchmarkPublicKeyOps20Ed448 give the operations one holds: two
// verifications (the request's signature and the provisioning
// certificate's; the sub-CAs are verified once and remembered), two key
// generations (the contract key and the ephemeral ECDH or X448 key), one
// key agreement and two signatures (the certificate and the CPS's).
func BenchmarkInstall20(b *testing.B) {
	for _, v := range variants20 {
		b.Run(v.name, func(b *testing.B) {
			e, reqs := install20Bench(b, v.ed)
			var next atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := e.install20(reqs, int(next.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// install20Bench is an installation environment of one variant with 256
// requests, each of a V2G session of its own.
func install20Bench(b *testing.B, ed bool) (*install20Env, [][]byte) {
	e := newInstall20Env(b, ed)
	e.in.Window = time.Nanosecond
	e.ev.MaxContracts = 1
	reqs := make([][]byte, 256)
	for i := range reqs {
		e.ev.SessionID = []byte{byte(i >> 8), byte(i), 'B', 'E', 'N', 'C', 'H', '0'}
		r, err := e.ev.InstallationRequest()
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = r
	}
	return e, reqs
}

// install20 answers request i (of reqs, round robin). A session asks
// once: past 256 requests the sessions are forgotten, so that each
// request is a new issuance.
func (e *install20Env) install20(reqs [][]byte, i int) error {
	_, err := e.in.Handle20(context.Background(), reqs[i%len(reqs)], LimitOCPP21, Options20{})
	var ie *InstallError
	if errors.As(err, &ie) && ie.Reason == ReasonNoContract {
		e.in.sessions.reset() // a second round over the same sessions
		_, err = e.in.Handle20(context.Background(), reqs[i%len(reqs)], LimitOCPP21, Options20{})
	}
	return err
}

// BenchmarkPublicKeyOps20 measures the P-521 operations of an ISO 15118-20
// installation, the floor BenchmarkInstall20/secp521r1 stands on.
func BenchmarkPublicKeyOps20(b *testing.B) {
	publicKeyOps(b, elliptic.P521(), ecdh.P521(), crypto.SHA512)
}

// BenchmarkPublicKeyOps20Ed448 measures the Ed448 and X448 operations of
// an ISO 15118-20 installation, the floor BenchmarkInstall20/Ed448 stands
// on: Ed448 verify, sign (of a certificate's size) and key generation, and
// an X448 key agreement with a new key.
func BenchmarkPublicKeyOps20Ed448(b *testing.B) {
	pub, priv, _ := ed448.GenerateKey(rand.Reader)
	msg := make([]byte, 600) // about a TBSCertificate
	sig := ed448.Sign(priv, msg, "")
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			ed448.Verify(pub, msg, sig, "")
		}
	})
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			ed448.Sign(priv, msg, "")
		}
	})
	b.Run("keygen", func(b *testing.B) {
		for b.Loop() {
			ed448.GenerateKey(rand.Reader)
		}
	})
	var peer, peerPub x448.Key
	rand.Read(peer[:])
	x448.KeyGen(&peerPub, &peer)
	b.Run("ecdh", func(b *testing.B) {
		var eph, ephPub, z x448.Key
		for b.Loop() {
			rand.Read(eph[:])
			x448.KeyGen(&ephPub, &eph)
			x448.Shared(&z, &eph, &peerPub)
		}
	})
}
