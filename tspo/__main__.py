from tspo.cli import main

raise SystemExit(main())
