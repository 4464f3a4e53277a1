package auth

import "testing"

// TestResponse checks the request-digest against the examples of RFC 2617
// 3.5 and RFC 7616 3.9.1.
func TestResponse(t *testing.T) {
	tests := []struct {
		alg                                       *algorithm
		user, realm, password                     string
		nonce, nc, cnonce, qop, method, uri, want string
	}{
		{md5Digest, "Mufasa", "testrealm@host.com", "Circle Of Life", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b", "auth", "GET", "/dir/index.html", "6629fae49393a05397450978507c4ef1"},
		{md5Digest, "Mufasa", "http-auth@example.org", "Circle of Life", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth", "GET", "/dir/index.html", "8ca523f5e9506fed4657c9700eebdbec"},
		{sha256Digest, "Mufasa", "http-auth@example.org", "Circle of Life", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth", "GET", "/dir/index.html", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for i, tc := range tests {
		ha1 := tc.alg.sum(tc.user, tc.realm, tc.password)
		if got := tc.alg.response(ha1, tc.nonce, tc.nc, tc.cnonce, tc.qop, tc.method, tc.uri); got != tc.want {
			t.Errorf("test %d (%s): %s, want %s", i, tc.alg.name, got, tc.want)
		}
	}
}
