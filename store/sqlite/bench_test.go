package sqlite

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pncpki/pncpki/store"
)

// BenchmarkPutCertificate measures the durable group commit of issued
// certificates (16 concurrent issuers, 620-byte DER, audit entry included)
// in CPU time per certificate, with random serials and with serials that
// lead with the time as ca.NewSerial makes them: the latter append to the
// serial index instead of dirtying a random page of it per certificate.
func BenchmarkPutCertificate(b *testing.B) {
	for _, ordered := range []bool{false, true} {
		name := "random"
		if ordered {
			name = "ordered"
		}
		b.Run(name, func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "pncpki.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			if err := db.CreateCA(ctx, &store.CA{Name: "cpo-sub2", Profile: "iso15118-2/cpo-sub2", KeyURI: "x", CertDER: []byte{1}, CreatedAt: time.Now()}); err != nil {
				b.Fatal(err)
			}
			der := make([]byte, 620)
			rand.Read(der)
			var seq atomic.Int64
			var ru0 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s := make([]byte, 16)
					rand.Read(s)
					if ordered { // microseconds and a counter: ordered as ca.NewSerial's
						binary.BigEndian.PutUint64(s, uint64(time.Now().UnixMicro())<<8|uint64(seq.Add(1)&0xff))
					}
					s[0] = s[0]&0x3f | 0x40
					now := time.Now()
					c := &store.Certificate{Issuer: "cpo-sub2", Serial: hex.EncodeToString(s), Profile: "iso15118-2/secc", Tenant: "cpo1",
						CommonName: "DE*ABC*E" + hex.EncodeToString(s[8:12]), NotBefore: now, NotAfter: now.AddDate(1, 0, 0), DER: der, CreatedAt: now}
					if err := db.PutCertificate(ctx, c); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			var ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) + syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Utime) - syscall.TimevalToNsec(ru0.Stime))
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}
