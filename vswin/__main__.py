from vswin.cli import main

raise SystemExit(main())
