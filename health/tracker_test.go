package health

import "testing"

func TestTracker(t *testing.T) {
	cases := []struct {
		name    string
		startUp bool
		results string // '+' success, '-' failure, 'P' passive failure streak
		flips   string // the verdict after each flip, at the result that caused it; '.' no flip
	}{
		{"fall after exactly three", true, "+--+---", "......d"},
		{"rise after exactly two", false, "+-++", "...u"},
		{"flap", true, "---++---+-++", "..d.u..d...u"},
		{"failures while down flip nothing", false, "-----", "....."},
		{"passive needs a fresh rise", true, "+P+-++", ".d...u"},
		{"passive while down is a no-op", false, "P++", "..u"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := tracker{rise: 2, fall: 3, up: tc.startUp}
			got := make([]byte, 0, len(tc.results))
			for _, c := range []byte(tc.results) {
				var flipped bool
				switch c {
				case 'P':
					flipped = tr.markDown()
				default:
					flipped = tr.observe(c == '+')
				}
				switch {
				case !flipped:
					got = append(got, '.')
				case tr.up:
					got = append(got, 'u')
				default:
					got = append(got, 'd')
				}
			}
			if string(got) != tc.flips {
				t.Fatalf("flips %s, want %s", got, tc.flips)
			}
		})
	}
}

func TestTrackerChanging(t *testing.T) {
	cases := []struct {
		tr   tracker
		want bool
	}{
		{tracker{up: true}, false},
		{tracker{up: true, successes: 4}, false},
		{tracker{up: true, failures: 1}, true},
		{tracker{up: false}, false},
		{tracker{up: false, failures: 7}, false},
		{tracker{up: false, successes: 1}, true},
	}
	for _, tc := range cases {
		if got := tc.tr.changing(); got != tc.want {
			t.Errorf("%+v.changing() = %v, want %v", tc.tr, got, tc.want)
		}
	}
}
