from perps_bot.cli.app import main

main()
